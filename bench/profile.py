"""Where the service's time goes: py-spy samples the service (GIL-holding samples only, so
idle waits don't count) while a load generator streams through it.

    .venv/bin/python -m bench.profile [--mode ws|sse] [--streams 20] [--tps 50] [--tokens 500]
                                      [--rate 200] [--top 40]

Writes bench/results/profile-<mode>.txt (collapsed stacks, for flamegraph.pl / speedscope)
and prints the functions with the most inclusive and self samples, plus a breakdown by
component. Needs py-spy (bench/requirements.txt)."""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proc import PYTHON, ROOT, cores, http_json, raise_fd_limit, start_fake, start_service  # noqa: E402

# component -> substrings of a frame that put a sample there (first match, leaf to root, wins)
COMPONENTS = [
    (
        "upstream client (aiohttp, openai SDK, httpx2, httpcore2, h11, anyio)",
        (
            "openai/",
            "httpx2/",
            "httpcore2/",
            "h11/",
            "anyio/",
            "aiohttp/",
            "aiohappyeyeballs/",
            "providers/openai_compat",
            "providers/openai_http",
        ),
    ),
    (
        "database (SQLAlchemy, aiosqlite, the SQLite thread)",
        ("sqlalchemy/", "aiosqlite/", "generations/store", "services/serial_thread", "services/db.py"),
    ),
    ("WebSocket send (starlette, uvicorn, websockets)", ("websockets/", "starlette/websockets", "websockets_sansio")),
    ("SSE send (StreamingResponse, uvicorn http)", ("starlette/responses", "httptools_impl", "api/sse.py")),
    ("stream log + follow/push", ("streaming/memory_log", "streaming/push", "generations/service.py")),
    (
        "producer (runner._stream, frames, loop detector)",
        ("generations/runner.py", "streaming/frames", "loop_detector"),
    ),
    ("ASGI/FastAPI request handling", ("fastapi/", "starlette/", "api/")),
]


def analyse(raw: Path, top: int) -> dict:
    self_c, incl, comp = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        if not line.strip():
            continue
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():  # a line cut short when the sampler was stopped
            continue
        n = int(n)
        total += n
        frames = stack.split(";")
        self_c[frames[-1]] += n
        for f in set(frames):
            incl[f] += n
        for f in reversed(frames):
            hit = next((name for name, keys in COMPONENTS if any(k in f for k in keys)), None)
            if hit:
                comp[hit] += n
                break
        else:
            comp["other (event loop, asyncio)"] += n
    pct = (lambda v: round(100 * v / total, 1)) if total else (lambda v: 0)
    return {
        "samples": total,
        "components": [(k, pct(v)) for k, v in comp.most_common()],
        "self": [(k, pct(v)) for k, v in self_c.most_common(top)],
        "inclusive": [
            (k, pct(v))
            for k, v in incl.most_common(top * 3)
            if not any(
                s in k
                for s in (
                    "click/",
                    "runpy",
                    "uvicorn/main",
                    "uvicorn/server",
                    "uvicorn/_compat",
                    "__main__",
                    "Runner.run",
                )
            )
        ][:top],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["ws", "sse"], default="ws")
    ap.add_argument("--streams", type=int, default=20)
    ap.add_argument("--tps", type=float, default=50)
    ap.add_argument("--tokens", type=int, default=500)
    ap.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--env", action="append", default=[], help="KEY=VALUE for the service (repeatable)")
    args = ap.parse_args()
    spy = shutil.which("py-spy") or str(ROOT / ".venv" / "bin" / "py-spy")
    if not Path(spy).exists():
        sys.exit("py-spy is not installed: .venv/bin/pip install -r bench/requirements.txt")
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="bench-profile-"))
    cpus = cores()
    svc_cpus, side = ({cpus[0]}, set(cpus[1:])) if len(cpus) > 1 else (None, None)
    fake, fake_url = start_fake(work, side, ["fake-model"])
    svc = start_service("main", work, fake_url, svc_cpus, env=dict(e.split("=", 1) for e in args.env))
    try:
        base = svc.extra["base"]
        http_json("POST", f"{base}/users", {"username": "bench", "password": "correct-horse-battery"})
        token = http_json("POST", f"{base}/token", form={"username": "bench", "password": "correct-horse-battery"})[1][
            "access_token"
        ]
        sessions = [
            http_json("POST", f"{base}/set-llm", {"max_tokens": 131072}, {"Authorization": f"Bearer {token}"})[1][
                "session_id"
            ]
            for _ in range(args.streams)
        ]

        def load(n_tokens: int, tps: float) -> dict:
            http_json("POST", f"{fake_url}/_fake/behaviour", {"tps": tps, "n": n_tokens})
            spec = {
                "kind": "streams",
                "mode": args.mode,
                "fake": fake_url,
                "service": base,
                "token": token,
                "sessions": sessions,
                "arrivals": [i / args.streams for i in range(args.streams)],
                "cutoff": 1 + n_tokens / (tps or 1000) + 30,
                "admission": 6,
            }
            (work / "spec.json").write_text(json.dumps(spec))
            p = subprocess.Popen(
                [PYTHON, "-m", "bench.loadgen", str(work / "spec.json"), str(work / "out.json")],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, side)) if side else None,
            )
            p.stdout.readline()
            p.stdin.write(f"go {time.monotonic() + 0.2}\n")
            p.stdin.flush()
            p.wait()
            return json.loads((work / "out.json").read_text())

        load(30, 0)  # warm-up
        out = RESULTS / f"profile-{args.mode}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        sampler = subprocess.Popen(
            [
                spy,
                "record",
                "-p",
                str(svc.pid),
                "-f",
                "raw",
                "-o",
                str(out),
                "-r",
                str(args.rate),
                "--gil",
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(1.0)
        c0 = svc.cpu()
        res = load(args.tokens, args.tps)
        used = svc.cpu() - c0
        sampler.send_signal(2)
        sampler.wait(30)
        tokens = sum(len(g["times"]) for g in res["generations"])
        summary = analyse(out, args.top)
        summary.update(
            mode=args.mode,
            streams=args.streams,
            tps=args.tps,
            tokens=tokens,
            cpu_us_per_token=round(used / max(tokens, 1) * 1e6, 1),
            env=args.env,
        )
        (RESULTS / f"profile-{args.mode}.json").write_text(json.dumps(summary, indent=1))
        print(
            f"{args.mode}: {tokens} tokens, service CPU {used:.2f}s = {summary['cpu_us_per_token']} us/token, "
            f"{summary['samples']} samples"
        )
        print("\nby component (% of GIL-holding samples):")
        for k, v in summary["components"]:
            print(f"  {v:5.1f}%  {k}")
        print("\ninclusive:")
        for k, v in summary["inclusive"]:
            print(f"  {v:5.1f}%  {k}")
        print("\nself:")
        for k, v in summary["self"]:
            print(f"  {v:5.1f}%  {k}")
    finally:
        svc.stop()
        fake.stop()
        shutil.rmtree(work, ignore_errors=True)


RESULTS = ROOT / "bench" / "results"

if __name__ == "__main__":
    main()
