"""What the garbage collector tracks in the service after heavy load, and what a full
collection then costs: the service runs in this process (uvicorn on uvloop, embedded
mode, the fake upstream in a child process) so its heap can be counted.

    .venv/bin/python -m bench.heap_census [--streams 1000] [--tps 25] [--tokens 50] [--modes ws,sse]

A full collection walks every tracked object: with many of them alive, it stalls every
stream at once (an earlier release kept a Frame per token of each finished answer for
STREAM_LOG_TTL, ~800k objects and 0.4-0.6 s pauses after the 1000-stream step)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx  # noqa: E402
import uvicorn  # noqa: E402
import uvloop  # noqa: E402

from bench.proc import LOAD_LIMITS, PYTHON, ROOT, cores, http_json, raise_fd_limit, start_fake  # noqa: E402
from config import Settings  # noqa: E402
from main import create_app  # noqa: E402

PASSWORD = "correct-horse-battery"


def census(label: str, top: int = 12) -> None:
    gc.collect()
    objects = gc.get_objects()
    kinds = collections.Counter(type(o).__qualname__ for o in objects)
    t0 = time.perf_counter()
    gc.collect()
    pause = time.perf_counter() - t0
    print(f"{label}: {len(objects)} tracked objects, a full collection takes {pause * 1e3:.1f} ms")
    print("   " + ", ".join(f"{kind} {n}" for kind, n in kinds.most_common(top)))


async def drive(args, work: Path, side: set[int] | None) -> None:
    fake, fake_url = start_fake(work, side, ["fake-model"])
    settings = Settings(
        _env_file=None,
        data_dir=work / "data",
        secret_key=None,
        openai_base_url=f"{fake_url}/v1",
        openai_api_key="bench",
        default_model="openai/fake-model",
        allow_registration=True,
        ws_max_connections_per_user=100_000,
        ws_max_messages_per_minute=100_000,
        ollama_probe_timeout=0,
        **{k.lower(): int(v) for k, v in LOAD_LIMITS.items()},
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=0, log_level="warning", ws_per_message_deflate=False
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.05)
        base = f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base) as c:
            await c.post("/users", json={"username": "bench", "password": PASSWORD})
            token = (await c.post("/token", data={"username": "bench", "password": PASSWORD})).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            sessions = [
                (await c.post("/set-llm", json={"max_tokens": 100_000}, headers=auth)).json()["session_id"]
                for _ in range(args.streams)
            ]
        census("after start-up")
        for mode in args.modes.split(","):
            await asyncio.to_thread(
                http_json, "POST", f"{fake_url}/_fake/behaviour", {"tps": args.tps, "n": args.tokens}
            )
            spec = {
                "kind": "streams",
                "mode": mode,
                "fake": fake_url,
                "service": base,
                "token": token,
                "sessions": sessions,
                "arrivals": [2 * i / args.streams for i in range(args.streams)],
                "cutoff": 2 + args.tokens / args.tps + 20,
                "admission": 0,
            }
            (work / "spec.json").write_text(json.dumps(spec))
            gen = await asyncio.create_subprocess_exec(
                PYTHON,
                "-m",
                "bench.loadgen",
                str(work / "spec.json"),
                str(work / "out.json"),
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                preexec_fn=(lambda: os.sched_setaffinity(0, side)) if side else None,
            )
            await gen.stdout.readline()  # "ready"
            gen.stdin.write(f"go {time.monotonic() + 0.2}\n".encode())
            await gen.stdin.drain()
            await gen.wait()
            await asyncio.sleep(3)  # the answers are finalized and their logs packed
            census(f"after {args.streams} x {args.tps:g} tok/s over {mode}")
    finally:
        server.should_exit = True
        await serving
        fake.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=1000)
    ap.add_argument("--tps", type=float, default=25)
    ap.add_argument("--tokens", type=int, default=50)
    ap.add_argument("--modes", default="ws,sse")
    args = ap.parse_args()
    raise_fd_limit()
    cpus = cores()
    side = set(cpus[1:]) if len(cpus) > 1 else None
    if side:
        os.sched_setaffinity(0, {cpus[0]})
    uvloop.run(drive(args, Path(tempfile.mkdtemp(prefix="bench-census-")), side))


if __name__ == "__main__":
    main()
