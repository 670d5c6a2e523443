"""The service's own relay path per token, in one process, without network or upstream:
producer (runner._stream) -> stream log -> relay() -> a transport's send, for the parts
this suite may change. Used to measure the hot-path edits before/after (the end-to-end
figures carry the upstream SDK's cost and this machine's noise on top).

    .venv/bin/python -m bench.relay_micro [--tokens 50000] [--readers 1] [--rounds 5]

Prints CPU microseconds per token for: frame encoding, the producer loop with its log
append, and producer + one live reader (one token per wake, as with a paced upstream)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _median(v):
    v = sorted(v)
    return v[len(v) // 2]


async def relay(tokens: int, readers: int) -> float:
    from config import Settings
    from services.generations.runner import GenerationRunner
    from services.generations.service import GenerationService
    from services.generations.state import GenerationState
    from services.streaming.memory_log import MemoryStreamLog

    settings = Settings(_env_file=None, data_dir="/tmp/bench-relay-micro")
    log = MemoryStreamLog(10_000)
    service = GenerationService(settings, None, log, None)
    runner = GenerationRunner(settings, None, log, None)
    gen = "01JBENCHRE1AYM1CR000000000"
    await log.create(gen)
    got = [0] * readers

    async def events():
        for i in range(tokens):
            yield f"t{i} "
            await asyncio.sleep(0)  # one token per loop turn: the reader wakes for each

    async def reader(k: int):
        sink = []
        if hasattr(service, "relay"):  # the transports' path (pulled, then pushed once caught up)

            async def send(batch):
                for frame in batch:
                    sink.append(frame.data)  # stands for `await send_text(frame.data)`
                    got[k] += 1

            await service.relay(gen, 0, send)
        elif hasattr(service, "follow_frames"):  # older trees: follow() yields batches
            async for batch in service.follow(gen, 0):
                if batch is None:
                    continue
                for frame in batch:
                    sink.append(frame.data)
                    got[k] += 1
                if batch[-1].type == "done":
                    return
        else:
            async for frame in service.follow(gen, 0):  # older trees: one frame at a time
                if frame is None:
                    continue
                sink.append(frame.data)
                got[k] += 1
                if frame.type == "done":
                    return

    from services.streaming import frames

    tasks = [asyncio.create_task(reader(k)) for k in range(readers)]
    await asyncio.sleep(0)
    c0 = time.process_time()
    state = GenerationState(gen, reserved=10**9)  # no store here: seqs need no reservation
    await runner._stream(events(), state, 10**9)
    await log.append(gen, frames.done(gen, state.seq + 1, "completed", "stop", None))
    await asyncio.gather(*tasks)
    used = time.process_time() - c0
    assert all(g == tokens + 1 for g in got), got
    return used / tokens * 1e6


def encode(n: int) -> float:
    from services.streaming import frames

    gen = "01JBENCHRE1AYM1CR000000000"
    c0 = time.process_time()
    for i in range(n):
        frames.chunk(gen, i, "hello ")
    return (time.process_time() - c0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=50000)
    ap.add_argument("--readers", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    try:
        import uvloop

        run = uvloop.run
    except ImportError:
        run = asyncio.run
    out = {"encode_chunk_frame_us": [], "producer_only_us": [], f"producer_plus_{args.readers}_reader_us": []}
    for _ in range(args.rounds):
        out["encode_chunk_frame_us"].append(encode(args.tokens))
        out["producer_only_us"].append(run(relay(args.tokens, 0)))
        out[f"producer_plus_{args.readers}_reader_us"].append(run(relay(args.tokens, args.readers)))
    print(
        json.dumps(
            {k: {"median": round(_median(v), 2), "runs": [round(x, 2) for x in v]} for k, v in out.items()}, indent=1
        )
    )


if __name__ == "__main__":
    main()
