"""scripts/run.sh: what it prints is where `python -m serve` (uvicorn) serves, and it installs only when
requirements.lock changed. Run in a copy of the script with a stand-in .venv whose python
prints the command it was given (so nothing is installed and nothing served)."""

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def checkout(tmp_path):
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pinned\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "pip"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool}: $*"\n')
        (bin_dir / tool).chmod(0o755)
    (tmp_path / ".venv" / ".requirements.sha").write_text(hashlib.sha256(lock.read_bytes()).hexdigest() + "\n")
    return tmp_path


def run(checkout: Path, *args: str) -> str:
    result = subprocess.run(
        ["bash", str(checkout / "scripts" / "run.sh"), *args], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    "args, url",
    [
        ((), "http://127.0.0.1:8000"),
        (("--port", "8100"), "http://127.0.0.1:8100"),
        (("--port=8101", "--reload"), "http://127.0.0.1:8101"),
        (("--host", "0.0.0.0", "--port", "8102"), "http://0.0.0.0:8102"),
    ],
)
def test_prints_the_address_uvicorn_serves_on(checkout, args, url):
    out = run(checkout, *args)
    banner = next(line for line in out.splitlines() if line.startswith("==> serving on"))
    assert banner.split()[3] == url
    serve = next(line for line in out.splitlines() if line.startswith("python: -m serve"))
    assert serve.endswith(" ".join(args)) if args else "--port 8000" in serve  # the last --port wins


def test_installs_from_the_lock_with_hashes_only_when_it_changed(checkout):
    assert "pip:" not in run(checkout)
    (checkout / "requirements.lock").write_text("# pinned, changed\n")
    out = run(checkout)
    assert "pip: install --quiet --require-hashes -r requirements.lock" in out
    assert "pip:" not in run(checkout)  # the stamp was updated
