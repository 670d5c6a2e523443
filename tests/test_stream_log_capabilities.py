"""The stream log's declared abilities (services/streaming/log.py: `nowait_append`, `pushes`,
`seals`, `append_ending`), run against both logs: each declares what it can do, and a log
does what it declares and, where it declares an ability absent, behaves as the interface
says a log without it does."""

import asyncio
from collections.abc import Sequence
from typing import Any

import pytest

from services.streaming import frames
from services.streaming.frames import Frame
from services.streaming.log import StreamConflict, StreamLog
from services.streaming.push import Pusher
from tests.test_stream_log_contract import kind, logs, write  # noqa: F401  (fixtures)

GEN = "01JCAPAB1L1T1ESAAAAAAAAAAA"

# What each log declares: the embedded one appends synchronously and pushes; the Redis one
# is shared by processes, so another one can end a generation and seal its log.
DECLARED = {
    "memory": {"nowait": True, "pushes": True, "seals": False},
    "redis": {"nowait": False, "pushes": False, "seals": True},
}


def declared(stream_log: StreamLog) -> dict[str, bool]:
    return {"nowait": stream_log.nowait_append() is not None, "pushes": stream_log.pushes, "seals": stream_log.seals}


async def test_each_log_declares_its_abilities(logs: Any, kind: str) -> None:  # noqa: F811
    assert declared(await logs()) == DECLARED[kind]


async def test_the_append_a_log_offers_is_readable_and_wakes(logs: Any) -> None:  # noqa: F811
    """The synchronous append where declared (nothing awaited between it and the read),
    else the awaited one the runner falls back to."""
    stream_log = await logs()
    append_now = stream_log.nowait_append()
    await stream_log.create(GEN)
    waiter = asyncio.create_task(stream_log.wait(GEN, 0, 5.0))
    await asyncio.sleep(0.1)
    frame = frames.chunk(GEN, 1, "now ")
    if append_now is not None:
        append_now(GEN, frame, "now ")
    else:
        await stream_log.append(GEN, frame, "now ")
    result = await stream_log.read(GEN, 0)
    assert [f.seq for f in result.frames] == [1]
    assert await stream_log.snapshot(GEN) == ("now ", 1)
    assert await asyncio.wait_for(waiter, 1.0) is True


async def test_attach_pushes_only_on_a_log_that_pushes(logs: Any) -> None:  # noqa: F811
    stream_log = await logs()
    await stream_log.create(GEN)
    await write(stream_log, GEN, 2, done=False)

    async def send(batch: Sequence[Frame]) -> None:
        raise AssertionError("the log never sends: the reader's own task does (streaming/push.py)")

    pusher = Pusher(send).rearm(2)
    attached = stream_log.attach(GEN, 2, pusher)
    assert attached is stream_log.pushes
    await stream_log.append(GEN, frames.chunk(GEN, 3, "w3 "), "w3 ")
    stream_log.detach(GEN, pusher)
    # a log that pushes fills the reader's buffer as it appends; one that does not, never
    assert [f.seq for f in pusher.buffer] == ([3] if stream_log.pushes else [])
    # pushed or not, a reader that pulls gets the frame
    assert [f.seq for f in (await stream_log.read(GEN, 2)).frames] == [3]


async def test_seal_returns_the_snapshot_and_refuses_the_producer_only_where_declared(logs: Any) -> None:  # noqa: F811
    stream_log = await logs()
    await stream_log.create(GEN)
    text = await write(stream_log, GEN, 3, done=False)
    assert await stream_log.seal(GEN) == (text, 3) == await stream_log.snapshot(GEN)
    late = frames.done(GEN, 4, "completed", "stop", None)  # a done frame's append waits for the write
    if stream_log.seals:
        with pytest.raises(StreamConflict):
            await stream_log.append(GEN, late)
        assert [f.seq for f in (await stream_log.read(GEN, 0)).frames] == [1, 2, 3]
    else:  # one process writes the log: its producer is the only one, and goes on
        await stream_log.append(GEN, late)
        assert [f.seq for f in (await stream_log.read(GEN, 0)).frames] == [1, 2, 3, 4]
    assert await stream_log.seal("01JCAPAB1L1T1ESUNKNOWN0000") is None


async def test_append_ending_goes_past_a_seal(logs: Any) -> None:  # noqa: F811
    stream_log = await logs()
    await stream_log.create(GEN)
    text = await write(stream_log, GEN, 3, done=False)
    snap = await stream_log.seal(GEN)
    done = frames.done(GEN, snap[1] + 1, "failed", "interrupted", None)
    await stream_log.append_ending(GEN, done)
    result = await stream_log.read(GEN, 0)
    assert [f.type for f in result.frames] == ["chunk"] * 3 + ["done"] and result.finished
    assert await stream_log.snapshot(GEN) == (text, 3)


async def test_append_ending_with_a_base_rebuilds_a_lost_log(logs: Any) -> None:  # noqa: F811
    """The log was lost (Redis restarted; an expired memory log): the ending is written over
    the stored text, so a reader from the start gets a snapshot of it, then the done frame."""
    stream_log = await logs()
    await stream_log.append_ending(GEN, frames.done(GEN, 6, "failed", "interrupted", None), base=("stored ", 5))
    assert (await stream_log.read(GEN, 0)).gap
    assert await stream_log.snapshot(GEN) == ("stored ", 5)
    after = await stream_log.read(GEN, 5)
    assert [(f.seq, f.type) for f in after.frames] == [(6, "done")] and after.finished
