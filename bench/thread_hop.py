"""CPU and wall time of one call from the event loop to a worker thread and back: what
the embedded mode pays per SQLite operation before the statement itself.

    .venv/bin/python -m bench.thread_hop [--calls 3000] [--rounds 3]

Variants: `executor` (loop.run_in_executor on a one-thread ThreadPoolExecutor, what
services/db.py used) and `serial` (services/serial_thread.SerialThread, what it uses)."""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from services.serial_thread import SerialThread  # noqa: E402


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _nothing() -> int:
    return 1


async def _measure(calls: int, rounds: int) -> dict:
    loop = asyncio.get_running_loop()
    executor, serial = ThreadPoolExecutor(1), SerialThread("bench")
    variants = {"executor": lambda: loop.run_in_executor(executor, _nothing), "serial": lambda: serial.call(_nothing)}
    results: dict[str, dict[str, list[float]]] = {name: {"cpu_us": [], "wall_us": []} for name in variants}
    for _ in range(rounds):  # interleaved, so both see the same machine
        for name, call in variants.items():
            for _ in range(100):
                await call()
            c0, t0 = _cpu(), time.perf_counter()
            for _ in range(calls):
                await call()
            results[name]["wall_us"].append(round((time.perf_counter() - t0) / calls * 1e6, 1))
            results[name]["cpu_us"].append(round((_cpu() - c0) / calls * 1e6, 1))
    executor.shutdown()
    serial.stop()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    results = uvloop.run(_measure(args.calls, args.rounds))  # the service's loop (uvicorn[standard])
    for name, r in results.items():
        print(
            f"{name:9s} per call: CPU {statistics.median(r['cpu_us']):6.1f} us {r['cpu_us']}, "
            f"wall {statistics.median(r['wall_us']):6.1f} us {r['wall_us']}"
        )


if __name__ == "__main__":
    main()
