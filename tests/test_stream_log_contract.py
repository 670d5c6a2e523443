"""The stream log contract (services/streaming/log.py), run against both implementations:
the embedded memory log and the Redis Streams log (a unique key prefix per test)."""

import asyncio
import json
import time

import pytest

from services.streaming import frames
from services.streaming.memory_log import MemoryStreamLog
from tests.scaleout_support import REDIS_URL, clean_redis, unique
from tests.support import eventually

GEN = "01JAAAAAAAAAAAAAAAAAAAAAAA"


async def make_log(kind: str, max_frames: int = 10_000):
    if kind == "memory":
        return MemoryStreamLog(max_frames), None
    from services.streaming.redis_log import RedisStreamLog

    prefix = unique("logtest") + ":"
    return RedisStreamLog(REDIS_URL, max_frames, prefix), prefix


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.scaleout)])
def kind(request):
    return request.param


@pytest.fixture
async def logs(kind):
    """A factory: `await logs(max_frames)`; everything made is closed and cleaned after."""
    made = []

    async def factory(max_frames: int = 10_000):
        stream_log, prefix = await make_log(kind, max_frames)
        made.append((stream_log, prefix))
        return stream_log

    yield factory
    for stream_log, prefix in made:
        await stream_log.aclose()
        if prefix:
            await clean_redis(prefix)


async def write(stream_log, gen: str, n: int, done: bool = True, start: int = 1) -> str:
    text = ""
    for seq in range(start, start + n):
        piece = f"w{seq} "
        text += piece
        await stream_log.append(gen, frames.chunk(gen, seq, piece), piece)
    if done:
        await stream_log.append(gen, frames.done(gen, start + n, "completed", "stop", None))
    return text


async def test_unknown_generation_is_none(logs):
    stream_log = await logs()
    assert await stream_log.read(GEN, 0) is None
    assert await stream_log.snapshot(GEN) is None
    started = time.monotonic()
    assert await stream_log.wait(GEN, 0, 3.0) is False
    assert time.monotonic() - started < 1.5  # unknown: no waiting for the timeout


async def test_created_generation_is_empty_not_none(logs):
    stream_log = await logs()
    await stream_log.create(GEN)
    result = await stream_log.read(GEN, 0)
    assert result is not None and result.frames == [] and not result.gap
    assert await stream_log.snapshot(GEN) == ("", 0)
    assert await stream_log.wait(GEN, 0, 0.3) is False  # known, nothing new: times out


async def test_read_from_every_offset(logs):
    stream_log = await logs()
    await stream_log.create(GEN)
    text = await write(stream_log, GEN, 12)
    for after in range(14):
        result = await stream_log.read(GEN, after)
        assert not result.gap
        assert [f.seq for f in result.frames] == list(range(after + 1, 14))
        for frame in result.frames:
            body = json.loads(frame.data)
            assert body["seq"] == frame.seq and body["type"] == frame.type
    limited = await stream_log.read(GEN, 3, limit=4)
    assert [f.seq for f in limited.frames] == [4, 5, 6, 7] and not limited.finished
    assert await stream_log.snapshot(GEN) == (text, 12)
    assert (await stream_log.read(GEN, 0)).finished  # reaches the done frame
    past_the_end = await stream_log.read(GEN, 13)
    assert past_the_end.frames == [] and past_the_end.finished  # nothing will follow
    assert (await stream_log.read(GEN, 12)).frames[0].type == "done"


async def test_not_finished_until_the_done_frame(logs):
    stream_log = await logs()
    await stream_log.create(GEN)
    await write(stream_log, GEN, 3, done=False)
    assert not (await stream_log.read(GEN, 0)).finished
    assert not (await stream_log.read(GEN, 3)).finished


async def test_gap_and_snapshot_after_trimming(logs):
    stream_log = await logs(max_frames=16)
    text = await write(stream_log, GEN, 40, done=False)
    assert await stream_log.read(GEN, 0) == type(await stream_log.read(GEN, 0))([], gap=True)
    assert (await stream_log.read(GEN, 23)).gap
    kept = await stream_log.read(GEN, 24)  # frames 25..40 are the 16 kept
    assert not kept.gap and [f.seq for f in kept.frames] == list(range(25, 41))
    assert await stream_log.snapshot(GEN) == (text, 40)
    await stream_log.append(GEN, frames.done(GEN, 41, "completed", "stop", None))
    assert await stream_log.snapshot(GEN) == (text, 40)  # done carries no text
    assert [f.seq for f in (await stream_log.read(GEN, 40)).frames] == [41]


async def test_wait_wakes_on_append_and_times_out(logs):
    stream_log = await logs()
    await stream_log.create(GEN)
    assert await stream_log.wait(GEN, 0, 0.2) is False
    waiter = asyncio.create_task(stream_log.wait(GEN, 0, 5.0))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    await write(stream_log, GEN, 1, done=False)
    assert await waiter is True
    assert time.monotonic() - started < 1.0
    assert await stream_log.wait(GEN, 0, 5.0) is True  # already there: at once
    assert await stream_log.wait(GEN, 1, 0.2) is False


async def test_many_waiters_wake_together(logs, kind):
    stream_log = await logs()
    gens = [f"01JBBBBBBBBBBBBBBBBBBBB{i:03d}" for i in range(20)]
    for gen in gens:
        await stream_log.create(gen)
    waiters = [asyncio.create_task(stream_log.wait(gen, 0, 10.0)) for gen in gens for _ in range(100)]
    await asyncio.sleep(0.3)
    for gen in gens:
        await stream_log.append(gen, frames.chunk(gen, 1, "x"), "x")
    assert all(await asyncio.wait_for(asyncio.gather(*waiters), 5))
    if kind == "redis":  # 2000 readers, one pub/sub connection: the pool stays small
        pool = stream_log.redis.connection_pool
        assert len(list(pool._get_free_connections())) + len(list(pool._get_in_use_connections())) <= 10


async def test_wake_all(logs):
    stream_log = await logs()
    gens = [f"01JCCCCCCCCCCCCCCCCCCCCC{i:02d}" for i in range(5)]
    for gen in gens:
        await stream_log.create(gen)
    waiters = [asyncio.create_task(stream_log.wait(gen, 0, 30.0)) for gen in gens for _ in range(3)]
    await asyncio.sleep(0.3)
    started = time.monotonic()
    stream_log.wake_all()
    await asyncio.wait_for(asyncio.gather(*waiters), 2)
    assert time.monotonic() - started < 1.0


async def test_expire_drops_the_log(logs):
    stream_log = await logs()
    await stream_log.create(GEN)
    await write(stream_log, GEN, 3)
    await stream_log.expire(GEN, 0.2)
    assert (await stream_log.read(GEN, 0)).frames  # still there before the ttl
    assert await eventually(lambda: stream_log.read(GEN, 0), lambda r: r is None, timeout=5) is None
    assert await stream_log.snapshot(GEN) is None


async def test_generations_are_independent_and_ordered_under_concurrency(logs):
    stream_log = await logs()
    gens = [f"01JDDDDDDDDDDDDDDDDDDDDD{i:02d}" for i in range(30)]

    async def produce(gen):
        await stream_log.create(gen)
        return await write(stream_log, gen, 60)

    texts = await asyncio.gather(*(produce(gen) for gen in gens))
    for gen, text in zip(gens, texts, strict=True):
        result = await stream_log.read(gen, 0)
        assert [f.seq for f in result.frames] == list(range(1, 62))
        assert "".join(json.loads(f.data).get("chunk", "") for f in result.frames) == text
        assert await stream_log.snapshot(gen) == (text, 60)


# Redis only: what the scale-out mode relies on beyond the shared contract


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.scaleout)])  # one case: the mark
async def redis_log():
    stream_log, prefix = await make_log("redis")
    yield stream_log
    await stream_log.aclose()
    await clean_redis(prefix)


async def test_redis_seq_is_written_once(redis_log):
    from services.streaming.redis_log import StreamConflict

    await write(redis_log, GEN, 3, done=False)
    await redis_log.append(GEN, frames.chunk(GEN, 3, "other"), "other")  # queued: chunks do not wait
    with pytest.raises(StreamConflict):
        await redis_log.sync(GEN)
    with pytest.raises(StreamConflict):  # and the producer's next append is refused at once
        await redis_log.append(GEN, frames.chunk(GEN, 4, "more"), "more")
    assert await redis_log.snapshot(GEN) == ("w1 w2 w3 ", 3)


async def test_redis_seal_stops_the_old_producer(redis_log):
    from services.streaming.redis_log import StreamConflict

    await write(redis_log, GEN, 3, done=False)
    assert await redis_log.seal(GEN) == ("w1 w2 w3 ", 3)
    with pytest.raises(StreamConflict):
        await redis_log.append(GEN, frames.chunk(GEN, 4, "late "), "late ")
        await redis_log.sync(GEN)
    await redis_log.append(GEN, frames.done(GEN, 4, "failed", "interrupted", None), force=True)
    assert [f.type for f in (await redis_log.read(GEN, 0)).frames] == ["chunk"] * 3 + ["done"]
    assert await redis_log.snapshot(GEN) == ("w1 w2 w3 ", 3)


async def test_redis_lost_log_is_rebuilt_by_its_producer(redis_log):
    """Redis restarted without persistence mid-generation: the producer's next write
    rebuilds content and seqs, so a reader gets a correct snapshot, then live frames."""
    await redis_log.create(GEN)
    text = await write(redis_log, GEN, 5, done=False)
    await redis_log.sync()
    await redis_log.redis.delete(*redis_log.keys.of(GEN))
    assert await redis_log.read(GEN, 0) is None
    text += await write(redis_log, GEN, 2, start=6)
    assert (await redis_log.read(GEN, 0)).gap
    assert await redis_log.snapshot(GEN) == (text, 7)
    assert [f.seq for f in (await redis_log.read(GEN, 5)).frames] == [6, 7, 8]


async def test_redis_reconnects_after_connections_are_killed(redis_log):
    await redis_log.create(GEN)
    waiter = asyncio.create_task(redis_log.wait(GEN, 0, 10.0))
    await asyncio.sleep(0.3)
    admin = redis_log.redis.client()
    name = await redis_log.redis.client_getname()
    killed = 0
    for client in await admin.client_list():  # every connection of this log, pub/sub included
        if client.get("name") == (name.decode() if isinstance(name, bytes) else name):
            await admin.client_kill_filter(_id=client["id"])
            killed += 1
    assert killed >= 2
    await admin.aclose()
    await asyncio.sleep(0.3)
    await write(redis_log, GEN, 2, done=False)
    assert await waiter is True
    assert await redis_log.snapshot(GEN) == ("w1 w2 ", 2)
    # after reconnecting, new waits are notified again
    waiter = asyncio.create_task(redis_log.wait(GEN, 2, 10.0))
    await asyncio.sleep(0.5)
    await write(redis_log, GEN, 1, done=False, start=3)
    assert await asyncio.wait_for(waiter, 5) is True


async def test_redis_log_behind_its_producer_is_rebuilt(redis_log):
    """Redis restarted from a persistence file a little behind: no hole in the seqs."""
    await redis_log.create(GEN)
    text = await write(redis_log, GEN, 6, done=False)
    await redis_log.sync()
    stream, content, meta = redis_log.keys.of(GEN)
    await redis_log.redis.xtrim(stream, minid="5-0")  # frames 5 and 6 and their text "lost"
    await redis_log.redis.xdel(stream, "5-1", "6-1")
    await redis_log.redis.hset(meta, mapping={"ls": 4, "cs": 4})
    await redis_log.redis.set(content, "w1 w2 w3 w4 ")
    text += await write(redis_log, GEN, 1, start=7)
    assert await redis_log.snapshot(GEN) == (text, 7)
    assert (await redis_log.read(GEN, 4)).gap  # a reader at 4 gets a snapshot, not 7 after 4
    assert [f.seq for f in (await redis_log.read(GEN, 7)).frames] == [8]
