"""Push delivery (services/streaming/push.py): the log fills a caught-up reader's buffer and wakes its
task once per loop iteration; that task sends what was appended since as one batch, in its own
context. A send that waits, or fails, never holds up the producer."""

import asyncio
import contextvars
import gc
import warnings

import pytest

from services.generations.service import GenerationService
from services.streaming import frames
from services.streaming.memory_log import MemoryStreamLog
from tests.support import make_settings

GEN = "01JBPVSHRE1AYM1CR000000000"


def _service(tmp_path, log, **settings) -> GenerationService:
    return GenerationService(make_settings(tmp_path, **settings), store=None, log=log, dispatch=None)


def _chunk(seq: int):
    return frames.chunk(GEN, seq, f"t{seq} ")


def _append(log, seq: int) -> None:
    log.append_nowait(GEN, _chunk(seq), f"t{seq} ")


def _done(log, seq: int) -> None:
    log.append_nowait(GEN, frames.done(GEN, seq, "completed", "stop", None))


class Reader:
    """A transport's send: records frames; `gate` cleared = the socket's buffer is full."""

    def __init__(self):
        self.seqs: list[int] = []
        self.sends: list[tuple[list[int], bool]] = []  # (seqs, sent by the reader's own task)
        self.task: asyncio.Task | None = None
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail: Exception | None = None

    async def send(self, batch) -> None:
        await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.seqs.extend(f.seq for f in batch)
        self.sends.append(([f.seq for f in batch], asyncio.current_task() is self.task))


async def _relaying(tmp_path, backlog: int = 0, **settings):
    """A log with `backlog` chunks and one reader relaying it, attached for pushes."""
    log = MemoryStreamLog(1000)
    await log.create(GEN)
    for seq in range(1, backlog + 1):
        _append(log, seq)
    reader, service = Reader(), _service(tmp_path, log, **settings)
    task = reader.task = asyncio.create_task(service.relay(GEN, 0, reader.send))
    await _caught_up(log, task)
    return log, reader, service, task


async def _caught_up(log, reader_task) -> None:
    for _ in range(50):  # the reader reads the backlog, then attaches
        await asyncio.sleep(0)
        if log._logs[GEN].pushers:
            return
    raise AssertionError(f"reader never attached (task done: {reader_task.done()})")


async def test_a_caught_up_reader_is_woken_once_per_loop_iteration_and_sends_from_its_own_task(tmp_path):
    log, reader, _, task = await _relaying(tmp_path, backlog=1)
    assert reader.sends == [([1], True)]  # the backlog, pulled by the reader's task
    _append(log, 2)
    await asyncio.sleep(0)
    for seq in range(3, 6):  # a burst in one iteration: one batch, one send
        _append(log, seq)
    await asyncio.sleep(0)
    _done(log, 6)
    await asyncio.sleep(0)
    assert reader.sends == [([1], True), ([2], True), ([3, 4, 5], True), ([6], True)]
    assert await asyncio.wait_for(task, 1) is True
    assert log._logs[GEN].pushers == []


async def test_a_reader_attached_while_another_is_being_woken_gets_no_frame_twice(tmp_path):
    log, first, service, task = await _relaying(tmp_path)
    second = Reader()
    second.task = asyncio.create_task(service.relay(GEN, 0, second.send))
    _append(log, 1)  # buffered for `first`; `second` pulls it from the log, then attaches
    await asyncio.sleep(0)
    assert len(log._logs[GEN].pushers) == 2 and second.sends == [([1], True)]
    _append(log, 2)
    _done(log, 3)
    assert await asyncio.wait_for(asyncio.gather(task, second.task), 1) == [True, True]
    assert first.seqs == second.seqs == [1, 2, 3]


async def test_a_send_that_must_wait_never_holds_up_the_producer_and_loses_nothing(tmp_path):
    log = MemoryStreamLog(1000)
    await log.create(GEN)
    slow, fast = Reader(), Reader()
    service = _service(tmp_path, log)
    tasks = [asyncio.create_task(service.relay(GEN, 0, r.send)) for r in (slow, fast)]
    await _caught_up(log, tasks[0])
    while len(log._logs[GEN].pushers) < 2:
        await asyncio.sleep(0)
    _append(log, 1)
    await asyncio.sleep(0)
    slow.gate.clear()  # its socket's buffer is full from here on
    for seq in range(2, 201):
        _append(log, seq)
        await asyncio.sleep(0)  # the slow reader's send is stuck: the producer goes on
    assert fast.seqs == list(range(1, 201))
    assert slow.seqs == [1]
    assert len(log._logs[GEN].pushers) == 1  # the slow one was handed back to its task
    await asyncio.sleep(0.01)
    slow.gate.set()
    _done(log, 201)
    assert await asyncio.wait_for(asyncio.gather(*tasks), 2) == [True, True]
    assert slow.seqs == fast.seqs == list(range(1, 202))  # each frame once, in order


async def test_a_failing_send_surfaces_in_the_readers_task_not_the_producers(tmp_path):
    log, reader, _, task = await _relaying(tmp_path)
    reader.fail = OSError("peer gone")
    _append(log, 1)
    _append(log, 2)  # the producer goes on: the send raises in the reader's task
    with pytest.raises(OSError, match="peer gone"):
        await asyncio.wait_for(task, 1)
    assert log._logs[GEN].pushers == []


async def test_a_reader_cancelled_during_a_waiting_send_closes_it(tmp_path):
    log, reader, _, task = await _relaying(tmp_path)
    reader.gate.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _append(log, 1)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]
    assert log._logs[GEN].pushers == [] and reader.seqs == []
    _append(log, 2)  # the producer goes on


async def test_silence_pings_and_frames_after_it_still_arrive(tmp_path):
    log = MemoryStreamLog(1000)
    await log.create(GEN)
    reader, pings = Reader(), []

    async def ping():
        pings.append(len(reader.seqs))

    task = asyncio.create_task(_service(tmp_path, log, sse_ping_interval=0.05).relay(GEN, 0, reader.send, ping))
    await _caught_up(log, task)
    _append(log, 1)
    async with asyncio.timeout(5):  # two silences in a row, however slow the machine
        while len(pings) < 2:
            await asyncio.sleep(0.01)
    assert pings[0] == 1
    await _caught_up(log, task)  # attached again after each ping
    _append(log, 2)
    _done(log, 3)
    assert await asyncio.wait_for(task, 1) is True
    assert reader.seqs == [1, 2, 3]


async def test_server_going_away_releases_pushed_readers(tmp_path):
    log, reader, service, task = await _relaying(tmp_path)
    _append(log, 1)
    await asyncio.sleep(0)
    service.close()
    assert await asyncio.wait_for(task, 1) is False  # no done frame: the client resumes elsewhere
    assert reader.seqs == [1]


async def test_generations_appended_in_one_iteration_each_reach_their_own_readers(tmp_path):
    log, first, service, task = await _relaying(tmp_path)
    other_gen = "01JBPVSHRE1AYM1CR000000001"
    await log.create(other_gen)
    second = Reader()
    second.task = asyncio.create_task(service.relay(other_gen, 0, second.send))
    while not log._logs[other_gen].pushers:
        await asyncio.sleep(0)
    for seq in (1, 2):
        _append(log, seq)
        log.append_nowait(other_gen, frames.chunk(other_gen, seq, "x"), "x")
    await asyncio.sleep(0)
    assert first.sends == [([1, 2], True)] and second.sends == [([1, 2], True)]
    _done(log, 3)
    log.append_nowait(other_gen, frames.done(other_gen, 3, "completed", "stop", None))
    assert await asyncio.wait_for(asyncio.gather(task, second.task), 1) == [True, True]


async def test_waiting_for_the_end_is_a_pushed_reader_that_returns_at_done(tmp_path):
    log = MemoryStreamLog(1000)
    await log.create(GEN)
    _append(log, 1)
    waiter = asyncio.create_task(_service(tmp_path, log).wait_done(GEN, timeout=5))
    await _caught_up(log, waiter)  # attached to the log: no wake of its task per token
    pusher = log._logs[GEN].pushers[0]
    for seq in range(2, 50):
        _append(log, seq)
        await asyncio.sleep(0)
    assert not waiter.done() and pusher.buffer == [] and pusher.waiter is not None and pusher.pushed == 0
    _done(log, 50)
    await asyncio.wait_for(waiter, 1)
    assert log._logs[GEN].pushers == []


REQUEST = contextvars.ContextVar("request")


async def test_a_pushed_send_sees_the_readers_task_context_and_timeouts(tmp_path):
    log, seen = MemoryStreamLog(1000), []
    await log.create(GEN)

    async def send(batch) -> None:
        async with asyncio.timeout(1):  # noqa: ASYNC100 - entering it needs a current task: the reader's
            seen.append((REQUEST.get("unset"), asyncio.current_task() is task))

    async def reader() -> bool:
        REQUEST.set("reader's request")  # a per-request contextvar, as a transport sets it
        return await _service(tmp_path, log).relay(GEN, 0, send)

    task = asyncio.create_task(reader())
    await _caught_up(log, task)
    REQUEST.set("producer's")
    for seq in range(1, 4):
        _append(log, seq)
        await asyncio.sleep(0)
    _done(log, 4)
    assert await asyncio.wait_for(task, 1) is True and seen == [("reader's request", True)] * 4


async def test_a_send_that_waited_finishes_in_the_readers_task_and_it_pulls_the_rest(tmp_path):
    log, reader, _, task = await _relaying(tmp_path)
    reader.gate.clear()
    _append(log, 1)
    await asyncio.sleep(0)  # the reader took [1] and waits in its send
    _append(log, 2)  # arrives during that send: the pusher lets go
    assert log._logs[GEN].pushers == []
    _append(log, 3)
    reader.gate.set()
    await _caught_up(log, task)  # pulled 2 and 3, attached again
    _done(log, 4)
    assert await asyncio.wait_for(task, 1) is True and reader.sends == [([1], True), ([2, 3], True), ([4], True)]
