"""Redis Streams stream log for the scale-out mode: the same contract as the memory log
(services/streaming/memory_log.py), shared by every API replica and worker.

Per generation `G`, with the configured prefix `P` (the `{G}` hash tag keeps the keys of one
generation in one Redis Cluster slot):

    P{G}:s   stream of frames; entry id `<seq>-1`, fields t (type) and d (the frame's JSON);
             capped with an exact MAXLEN of `max_frames`, like the memory log's deque
    P{G}:c   content of all chunks so far (APPENDed)
    P{G}:m   hash: ls (last seq), cs (seq of the last chunk), fin (the done frame is in),
             sealed (set when another process ended the generation: later appends from its
             producer are refused)
    P{G}:n   pub/sub channel; every write publishes the new last seq on it

Writes go through one Lua script per generation and batch, so the frames, the content and the
seqs change together (a snapshot is always consistent with the frames), a seq is written at
most once (a second writer of the same seq gets `StreamConflict`, a retried identical write is
recognised and ignored), and a sealed log refuses its old producer.

This class is the facade: it holds the client, a writer (redis_writer.py: batches, order,
retries) and a watcher (redis_watch.py: one pub/sub connection per process, notifications
carrying the frames), and reads itself; the Lua scripts and key names are in redis_scripts.py.
It appends asynchronously (no `nowait_append`), never pushes (readers pull, woken by the
watcher) and seals (`seals`).

Redis restarts: the client reconnects (redis-py retries plus our own retry loop for writes);
a log lost with the restart (no persistence) is rebuilt by its producer from the content it
wrote (kept in this process while it produces), so snapshots stay correct."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.streaming.frames import Frame
from services.streaming.log import ReadResult, StreamConflict, StreamLog
from services.streaming.redis_scripts import SAFETY_TTL_MS, SEAL_LUA, Keys
from services.streaming.redis_watch import RedisWatcher
from services.streaming.redis_writer import RedisWriter

__all__ = ["RedisStreamLog", "StreamConflict"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # per process; commands queue for a free connection beyond that
TAIL_FRAMES = 256  # frames kept per watched generation from notifications


def connect(redis_url: str, key_prefix: str, max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """The client of one process: a bounded pool that waits out a Redis restart."""
    # About 15 s of retries (backoff capped at 1 s): a request that meets a Redis restart
    # waits for it to come back instead of failing with a 500 (issue 14, point 3).
    retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=20)
    pool = aioredis.BlockingConnectionPool.from_url(
        redis_url,
        max_connections=max_connections,
        timeout=30,
        retry=retry,
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        socket_timeout=15,
        socket_connect_timeout=5,
        socket_keepalive=True,
        health_check_interval=15,
        client_name="stream-log:" + "".join(c if c.isalnum() or c in ":._-" else "_" for c in key_prefix),
    )
    return aioredis.Redis(connection_pool=pool)


class RedisStreamLog(StreamLog):
    seals = True

    def __init__(
        self, redis_url: str, max_frames: int, key_prefix: str = "chat:", max_connections: int = MAX_CONNECTIONS
    ):
        self.max_frames = max_frames
        self.keys = Keys(key_prefix)
        # Public: the scale-out package's leases and liveness keys share this pool.
        self.redis = connect(redis_url, key_prefix, max_connections)
        self._seal = self.redis.register_script(SEAL_LUA)
        self.writer = RedisWriter(self.redis, self.keys, max_frames)
        self.watcher = RedisWatcher(self.redis, self.keys, min(TAIL_FRAMES, max_frames))
        self._reads: dict[tuple[str, int, int], asyncio.Future[ReadResult | None]] = {}

    async def create(self, generation_id: str) -> None:
        _, _, meta = self.keys.of(generation_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(meta, "ls", 0)
        pipe.hsetnx(meta, "cs", 0)
        pipe.pexpire(meta, SAFETY_TTL_MS)
        await pipe.execute()

    async def append(
        self,
        generation_id: str,
        frame: Frame,
        text: str | None = None,
        *,
        force: bool = False,
        base: tuple[str, int] | None = None,
    ) -> None:
        """Queues `frame`; a `done` frame, a forced one, or any frame when too many are queued,
        returns only once written. `force` writes past a seal and `base` first resets the
        content to (text, chunk seq): both for `append_ending`."""
        await self.writer.append(generation_id, frame, text, force, base)

    async def append_ending(self, generation_id: str, frame: Frame, base: tuple[str, int] | None = None) -> None:
        await self.writer.append(generation_id, frame, None, True, base)

    async def sync(self, generation_id: str | None = None) -> None:
        """Waits until every frame queued so far is written; raises the generation's refused
        write, if any."""
        await self.writer.sync(generation_id)

    async def read(self, generation_id: str, after: int, limit: int = 512) -> ReadResult | None:
        if self.writer.queued(generation_id):  # this process's own writes are visible to it
            await self.writer.sync()
        cached = self.watcher.cached(generation_id, after, limit)
        if cached is not None:
            return cached
        # Readers of one generation wake together and ask for the same frames: one round trip.
        key = (generation_id, after, limit)
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.ensure_future(self._read(generation_id, after, limit))
            task.add_done_callback(lambda t: (self._reads.pop(key, None), t.cancelled() or t.exception()))
        return await asyncio.shield(task)

    async def _read(self, generation_id: str, after: int, limit: int) -> ReadResult | None:
        stream, _, meta = self.keys.of(generation_id)
        pipe = self.redis.pipeline(transaction=False)
        pipe.xrange(stream, f"{after + 1}-0", "+", count=limit)
        pipe.hmget(meta, "ls", "fin")
        try:
            entries, (last, fin) = await pipe.execute()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Redis is down or restarting: readers stay connected and poll until it is back
            # (then, if the log went with it, they fall back to the database).
            log.warning("stream log read failed (%s); readers keep waiting", type(exc).__name__)
            await asyncio.sleep(0.5)
            return ReadResult([])
        if not entries:
            if last is None:
                return None
            return ReadResult([], finished=fin is not None and after >= int(last))
        out = []
        for entry_id, fields in entries:
            seq = int(entry_id.split(b"-", 1)[0])
            out.append(Frame(seq, fields[b"t"].decode(), fields[b"d"].decode()))
        if out[0].seq > after + 1:
            return ReadResult([], gap=True)
        return ReadResult(out, finished=out[-1].type == "done")

    async def snapshot(self, generation_id: str) -> tuple[str, int] | None:
        if self.writer.queued(generation_id):
            await self.writer.sync()
        _, content, meta = self.keys.of(generation_id)
        pipe = self.redis.pipeline(transaction=True)  # MULTI: consistent with appends
        pipe.get(content)
        pipe.hget(meta, "cs")
        text, chunk_seq = await pipe.execute()
        if chunk_seq is None:
            return None
        return (text or b"").decode(), int(chunk_seq)

    async def seal(self, generation_id: str) -> tuple[str, int] | None:
        """Refuses further appends from the generation's producer (`append_ending` still
        goes in) and returns the snapshot at that instant, or None if the log is gone."""
        if self.writer.queued(generation_id):
            await self.writer.sync()
        result = await self._seal(keys=list(self.keys.of(generation_id)))
        if not result:
            return None
        return result[0].decode(), int(result[1])

    async def wait(self, generation_id: str, after: int, timeout: float) -> bool:
        return await self.watcher.wait(generation_id, after, timeout)

    async def expire(self, generation_id: str, ttl: float) -> None:
        self.writer.forget(generation_id)
        ms = max(1, int(ttl * 1000))
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys.of(generation_id):
            pipe.pexpire(key, ms)
        await pipe.execute()

    def wake_all(self) -> None:
        self.watcher.wake_all()

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        await self.writer.aclose()
        await self.watcher.aclose()
        await self.redis.aclose()
