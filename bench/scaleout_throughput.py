"""Throughput of the embedded mode and of the scale-out mode (2 API replicas + 2 workers on
PostgreSQL, Redis and RabbitMQ), against the fake upstream, on this machine.

N concurrent generations (each in its own session): submitted with POST /chat
{"background": true} on one replica and streamed over SSE from another (the embedded mode
has one). Prints the tokens per second delivered to clients and the CPU time each process
spent per delivered token.

    .venv/bin/python bench/scaleout_throughput.py [--concurrency 20] [--tokens 300] [--tps 0]
        [--mode both|embedded|scaleout] [--prefetch 64]

Needs the local services the scale-out tests use (see tests/scaleout_support.py)."""

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proc import LOAD_LIMITS
from tests.scaleout_support import PYTHON, ROOT, SECRET, Namespace, Proc
from tests.support import free_port


def start_fake(log_dir: Path) -> tuple[subprocess.Popen, str]:
    log_path = log_dir / "fake.log"
    proc = subprocess.Popen(
        [PYTHON, "-m", "fakeupstream", "--port", "0"], cwd=ROOT, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = log_path.read_text()
        if "listening on" in text:
            return proc, text.split("listening on", 1)[1].split()[0]
        time.sleep(0.05)
    raise RuntimeError("fake upstream did not start")


async def one(client: httpx.AsyncClient, submit: str, stream: str, headers: dict, i: int) -> int:
    """Submits one message and streams its answer; a dropped connection (e.g. a keep-alive
    connection the server just closed) is resumed with Last-Event-ID, as clients must."""
    for attempt in range(5):
        try:
            r = await client.post(f"{submit}/chat", json={"message": f"bench {i}", "background": True}, headers=headers)
            break
        except (httpx.ReadError, httpx.RemoteProtocolError):
            if attempt == 4:
                raise
    r.raise_for_status()
    generation_id = r.json()["generation_id"]
    last = 0
    chunks = 0
    for _attempt in range(10):
        try:
            resume = {**headers, "Last-Event-ID": str(last)} if last else headers
            async with client.stream("GET", f"{stream}/generations/{generation_id}/events", headers=resume) as resp:
                kind = None
                async for line in resp.aiter_lines():
                    if line.startswith("id: "):
                        seq = int(line[4:])
                    elif line.startswith("event: "):
                        kind = line[7:]
                    elif line == "" and kind in ("chunk", "done"):
                        if seq > last:
                            last = seq
                            chunks += kind == "chunk"
                        if kind == "done":
                            return chunks
                        kind = None
        except (httpx.ReadError, httpx.RemoteProtocolError):
            continue
    raise RuntimeError(f"generation {generation_id}: no done frame")


async def load(
    bases: list[str], concurrency: int, fake: str, tokens: int, tps: float, procs: dict[str, int]
) -> tuple[int, float, dict, dict]:
    """Runs the generations; CPU is sampled around them only (not registration or warm-up)."""
    limits = httpx.Limits(max_connections=concurrency * 2 + 10, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=300, limits=limits) as client:
        user = f"bench{time.time_ns()}"
        await client.post(f"{bases[0]}/users", json={"username": user, "password": "correct-horse-battery"})
        token = (
            await client.post(f"{bases[0]}/token", data={"username": user, "password": "correct-horse-battery"})
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        await client.post(f"{fake}/_fake/behaviour", json={"n": 20, "tps": 0})
        await asyncio.gather(*(one(client, bases[0], bases[-1], headers, i) for i in range(4)))  # warm up
        await client.post(f"{fake}/_fake/behaviour", json={"n": tokens, "tps": tps})
        before = cpu(procs)
        started = time.perf_counter()
        counts = await asyncio.gather(
            *(one(client, bases[i % len(bases)], bases[(i + 1) % len(bases)], headers, i) for i in range(concurrency))
        )
        elapsed = time.perf_counter() - started
        return sum(counts), elapsed, before, cpu(procs)


def cpu(procs: dict[str, int]) -> dict[str, float]:
    out = {}
    for name, pid in procs.items():
        t = psutil.Process(pid).cpu_times()
        out[name] = t.user + t.system
    return out


def report(mode: str, delivered: int, elapsed: float, before: dict, after: dict, expected: int) -> None:
    print(
        f"\n== {mode}: {delivered} tokens delivered (expected {expected}) in {elapsed:.2f}s "
        f"= {delivered / elapsed:,.0f} tokens/s"
    )
    total = 0.0
    for name in before:
        used = after[name] - before[name]
        total += used
        print(f"   {name:<10} cpu {used:6.2f}s  {used / max(delivered, 1) * 1e6:7.1f} us/token")
    print(
        f"   {'all':<10} cpu {total:6.2f}s  {total / max(delivered, 1) * 1e6:7.1f} us/token "
        f"(service processes, fake upstream excluded)"
    )


async def bench_embedded(args, fake_proc, fake: str, work: Path) -> None:
    env = Namespace().env(
        OPENAI_BASE_URL=f"{fake}/v1",
        OPENAI_API_KEY="bench",
        DEFAULT_MODEL="openai/fake-model",
        DATA_DIR=work / "embedded-data",
        **LOAD_LIMITS,
    )
    for key in ("DATABASE_URL", "REDIS_URL", "RABBITMQ_URL", "REDIS_KEY_PREFIX", "RABBITMQ_QUEUE"):
        env.pop(key, None)
    api = Proc.api("api", free_port(), env, work).start().wait_ready()
    try:
        procs = {"api": api.proc.pid, "fake": fake_proc.pid}
        delivered, elapsed, before, after = await load([api.base], args.concurrency, fake, args.tokens, args.tps, procs)
    finally:
        api.stop()
    fake_used = after.pop("fake") - before.pop("fake")
    report(
        "embedded (1 process, SQLite, memory log)", delivered, elapsed, before, after, args.concurrency * args.tokens
    )
    print(f"   (fake upstream cpu {fake_used:.2f}s)")


async def bench_scaleout(args, fake_proc, fake: str, work: Path) -> None:
    ns = await Namespace("bench").acreate()
    env = ns.env(
        OPENAI_BASE_URL=f"{fake}/v1",
        OPENAI_API_KEY="bench",
        DEFAULT_MODEL="openai/fake-model",
        DATA_DIR=work / "scaleout-data",
        SECRET_KEY=SECRET,
        RABBITMQ_PREFETCH=args.prefetch,
        **LOAD_LIMITS,
    )
    apis = [Proc.api(f"api{i}", free_port(), env, work) for i in (1, 2)]
    workers = [Proc.worker(f"worker{i}", env, work) for i in (1, 2)]
    try:
        for proc in (*apis, *workers):
            proc.start()
        for proc in (*apis, *workers):
            proc.wait_ready()
        procs = {p.name: p.proc.pid for p in (*apis, *workers)}
        procs["fake"] = fake_proc.pid
        delivered, elapsed, before, after = await load(
            [a.base for a in apis], args.concurrency, fake, args.tokens, args.tps, procs
        )
    finally:
        for proc in (*apis, *workers):
            proc.stop()
        await ns.adestroy()
    fake_used = after.pop("fake") - before.pop("fake")
    report(
        "scale-out (2 API replicas + 2 workers, PostgreSQL, Redis, RabbitMQ)",
        delivered,
        elapsed,
        before,
        after,
        args.concurrency * args.tokens,
    )
    print(f"   (fake upstream cpu {fake_used:.2f}s)")


async def main() -> None:
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=300, help="tokens per generation")
    parser.add_argument("--tps", type=float, default=0, help="upstream tokens/s per generation (0: unpaced)")
    parser.add_argument("--mode", choices=["both", "embedded", "scaleout"], default="both")
    parser.add_argument(
        "--prefetch",
        type=int,
        default=64,
        help="RABBITMQ_PREFETCH of the workers: generations each runs at once (default 64)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scaleout-"))
    fake_proc, fake = start_fake(work)
    print(
        f"{psutil.cpu_count()} CPUs; {args.concurrency} concurrent generations x {args.tokens} tokens, "
        f"upstream {'unpaced' if not args.tps else f'{args.tps} tokens/s each'}"
    )
    ok = False
    try:
        if args.mode in ("both", "embedded"):
            await bench_embedded(args, fake_proc, fake, work)
        if args.mode in ("both", "scaleout"):
            await bench_scaleout(args, fake_proc, fake, work)
        ok = True
    finally:
        fake_proc.terminate()
        fake_proc.wait()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"process logs kept in {work}")


if __name__ == "__main__":
    asyncio.run(main())
