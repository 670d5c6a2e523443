"""One embedded process per data directory (issue 14, point 5), with real uvicorn processes:
a second one on the same DATA_DIR, or `--workers 2`, refuses to start with a message naming
the scale-out mode, and leaves the first one's live generation alone; the lock goes with its
holder, even one killed with SIGKILL."""

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from services.datadir_lock import requested_workers
from tests.support import ServerProcess, free_port, register

ROOT_DIR = Path(__file__).resolve().parent.parent


def env_for(tmp_path, **extra) -> dict:
    return {"DATA_DIR": str(tmp_path / "data"), "TIME_BETWEEN_CHUNKS": "0.02", **extra}


def run_to_exit(env: dict, *extra_args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    import os

    cmd = [sys.executable, "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", str(free_port()), *extra_args]
    return subprocess.run(cmd, cwd=ROOT_DIR, env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout)


async def test_second_process_on_the_same_data_dir_refuses_to_start(tmp_path):
    first = await ServerProcess(env_for(tmp_path)).start()
    try:
        async with first.client() as c:
            token = await register(c, "ada")
            c.headers["Authorization"] = f"Bearer {token}"
            job = (await c.post("/chat", json={"message": "a long one", "background": True})).json()
            second = run_to_exit(env_for(tmp_path))
            assert second.returncode != 0
            assert "refusing to start" in second.stderr and "scale-out mode" in second.stderr
            assert f"process {first.proc.pid}" in second.stderr
            # the first process's answer was not ended by the second one's start-up recovery
            gen = (await c.get(f"/generations/{job['generation_id']}")).json()
            assert gen["status"] in ("queued", "running", "completed") and gen["finish_reason"] != "interrupted"
            assert (await c.get("/health")).status_code == 200
    finally:
        await first.stop()


async def test_workers_are_refused_in_embedded_mode(tmp_path):
    result = run_to_exit(env_for(tmp_path), "--workers", "2")  # returns: it stopped instead of serving
    assert "2 workers were requested" in result.stderr and "scale-out mode" in result.stderr


async def test_the_lock_goes_with_a_killed_holder(tmp_path):
    first = await ServerProcess(env_for(tmp_path)).start()
    first.signal(signal.SIGKILL)
    await first.wait_exit()
    second = await ServerProcess(env_for(tmp_path)).start()  # starts: the kernel dropped the lock
    try:
        async with httpx.AsyncClient() as c:
            assert (await c.get(f"{second.base}/health")).status_code == 200
    finally:
        await second.stop()


@pytest.mark.parametrize(
    "argv, environ, expected",
    [
        (["uvicorn", "main:app"], {}, 1),
        (["uvicorn", "main:app", "--workers", "3"], {}, 3),
        (["uvicorn", "main:app", "--workers=2"], {}, 2),
        (["uvicorn", "main:app"], {"WEB_CONCURRENCY": "4"}, 4),
        (["uvicorn", "main:app", "--workers", "1"], {"WEB_CONCURRENCY": "4"}, 1),
    ],
)
def test_requested_workers(argv, environ, expected):
    assert requested_workers(argv, environ) == expected
