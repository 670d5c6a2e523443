"""What this machine charges a process for waking up to handle one event, before any of
the service's code runs: a uvloop process pinned to one core reads one byte that another
process, pinned to the other core, writes every `interval`. Its CPU time per wake is the
floor under every per-token figure at that spacing (a paced token is one such wake).

    .venv/bin/python -m bench.wake_cost [--events 300]

On a VM, going idle and being woken costs far more than on bare metal; the figures show how
much of the service's CPU per token at low load is this machine's, not the service's."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.proc import cores  # noqa: E402


async def _measure(events: int, interval: float, reader_cpu: int, writer_cpu: int) -> float:
    loop = asyncio.get_running_loop()
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    received = 0
    done = loop.create_future()

    def on_readable() -> None:
        nonlocal received
        received += len(ours.recv(4096))
        if received >= events and not done.done():
            done.set_result(None)

    loop.add_reader(ours.fileno(), on_readable)
    pid = os.fork()
    if pid == 0:  # the writer: a separate process, as the upstream and the clients are
        os.sched_setaffinity(0, {writer_cpu})
        for _ in range(events):
            time.sleep(interval)
            theirs.send(b"x")
        os._exit(0)
    cpu0 = time.process_time()
    await done
    used = time.process_time() - cpu0
    loop.remove_reader(ours.fileno())
    os.waitpid(pid, 0)
    ours.close()
    theirs.close()
    return used / events * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=300)
    args = ap.parse_args()
    import uvloop

    cpus = cores()
    reader, writer = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {reader})
    for interval in (0.02, 0.01, 0.001, 0.0):
        n = args.events if interval >= 0.001 else args.events * 10
        us = uvloop.run(_measure(n, interval, reader, writer))
        print(f"event every {interval * 1000:>4.0f} ms: {us:6.1f} us of CPU per wake ({n} events)")


if __name__ == "__main__":
    main()
