"""The embedded stream log keeps finished answers for resumes (STREAM_LOG_TTL) without
making the garbage collector walk their tokens: a full collection over thousands of kept
answers stalled every live stream for 0.4-0.6 s in the benchmark."""

import gc

from services.streaming import frames
from services.streaming.memory_log import MemoryStreamLog

GEN = "01JBENCHRE1AYM1CR000000000"


def _tracked() -> int:
    gc.collect()
    return len(gc.get_objects())


async def test_a_finished_answer_costs_the_collector_a_few_objects_not_one_per_token():
    log = MemoryStreamLog(10_000)
    await log.create(GEN)
    before = _tracked()
    for seq in range(1, 2001):
        log.append_nowait(GEN, frames.chunk(GEN, seq, f"t{seq} "), f"t{seq} ")
    assert _tracked() - before > 1900  # while it streams, each frame is an object of its own
    await log.append(GEN, frames.done(GEN, 2001, "completed", "stop", None))
    assert _tracked() - before < 20


async def test_a_finished_answer_reads_back_the_same_frames():
    log = MemoryStreamLog(5)  # also past the cap: the oldest frames are gone, a gap is reported
    await log.create(GEN)
    sent = [frames.chunk(GEN, seq, f"t{seq} ") for seq in range(1, 8)]
    for seq, f in enumerate(sent, 1):
        await log.append(GEN, f, f"t{seq} ")
    done = frames.done(GEN, 8, "completed", "stop", None)
    await log.append(GEN, done)
    whole = await log.read(GEN, 3)
    assert whole.frames == [*sent[3:], done] and whole.finished
    assert (await log.read(GEN, 6, limit=1)).frames == [sent[6]]
    assert (await log.read(GEN, 1)).gap
    assert (await log.read(GEN, 8)).frames == [] and (await log.read(GEN, 8)).finished
    assert await log.snapshot(GEN) == ("t1 t2 t3 t4 t5 t6 t7 ", 7)
