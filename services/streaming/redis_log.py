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

Writing (batches, order, retries) is in redis_writer.py; waiting (one pub/sub connection per
process, notifications carrying the frames) in redis_watch.py; the Lua scripts in redis_scripts.py.

Redis restarts: the client reconnects (redis-py retries plus our own retry loop for writes);
a log lost with the restart (no persistence) is rebuilt by its producer from the content it
wrote (kept in this process while it produces), so snapshots stay correct."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from itertools import islice

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.streaming.frames import Frame
from services.streaming.log import ReadResult, StreamLog
from services.streaming.redis_scripts import (ACQUIRE_LEASE_LUA, APPEND_LUA, RELEASE_LEASE_LUA,
                                              RENEW_LEASE_LUA, SAFETY_TTL_MS, SEAL_LUA, StreamConflict)
from services.streaming.redis_watch import _Waiting, _Watch
from services.streaming.redis_writer import _Writing

__all__ = ["RedisStreamLog", "StreamConflict"]

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64  # per process; commands queue for a free connection beyond that
MAX_PENDING = 10_000  # frames queued for writing before appends wait for Redis (backpressure)
TAIL_FRAMES = 256  # frames kept per watched generation from notifications


class RedisStreamLog(_Writing, _Waiting, StreamLog):
    def __init__(self, redis_url: str, max_frames: int, key_prefix: str = "chat:",
                 max_connections: int = MAX_CONNECTIONS):
        self.max_frames = max_frames
        self.prefix = key_prefix
        # About 15 s of retries (backoff capped at 1 s): a request that meets a Redis restart
        # waits for it to come back instead of failing with a 500 (issue 14, point 3).
        retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=20)
        pool = aioredis.BlockingConnectionPool.from_url(
            redis_url, max_connections=max_connections, timeout=30, retry=retry,
            retry_on_error=[RedisConnectionError, RedisTimeoutError], socket_timeout=15,
            socket_connect_timeout=5, socket_keepalive=True, health_check_interval=15,
            client_name="stream-log:" + "".join(c if c.isalnum() or c in ":._-" else "_" for c in key_prefix))
        self.redis = aioredis.Redis(connection_pool=pool)
        self._append_sha = hashlib.sha1(APPEND_LUA.encode()).hexdigest()
        self._seal = self.redis.register_script(SEAL_LUA)
        self.acquire_lease_script = self.redis.register_script(ACQUIRE_LEASE_LUA)
        self.renew_lease_script = self.redis.register_script(RENEW_LEASE_LUA)
        self.release_lease_script = self.redis.register_script(RELEASE_LEASE_LUA)
        # writes
        self._pending: list[tuple] = []
        self._pending_fut: asyncio.Future | None = None  # resolved when the queued batch is written
        self._inflight_fut: asyncio.Future | None = None  # ... and the batch being written
        self._flusher: asyncio.Task | None = None
        self._failed: dict[str, Exception] = {}  # generation -> its refused write
        self._queued: dict[str, int] = {}  # generation -> frames queued or in flight from here
        self.tail_frames = min(TAIL_FRAMES, max_frames)
        self._produced: dict[str, list] = {}  # generation -> [parts, last chunk seq] written from here
        # reads and waits
        self._reads: dict[tuple, asyncio.Future] = {}
        self._watches: dict[str, _Watch] = {}
        self._by_channel: dict[bytes, str] = {}
        self._to_subscribe: set[bytes] = set()
        self._subscribe_wanted: asyncio.Event | None = None
        self._pubsub = None
        self._listener: asyncio.Task | None = None
        self._subscriber: asyncio.Task | None = None
        self._checking: set[str] = set()
        self._checker: asyncio.Task | None = None
        self._closed = False

    # keys
    def _keys(self, generation_id: str) -> tuple[str, str, str]:
        base = f"{self.prefix}{{{generation_id}}}"
        return f"{base}:s", f"{base}:c", f"{base}:m"

    def _channel(self, generation_id: str) -> bytes:
        return f"{self.prefix}{{{generation_id}}}:n".encode()

    def key(self, *parts: str) -> str:
        """A key of this deployment outside any generation (leases, liveness, kicks)."""
        return self.prefix + ":".join(parts)

    # StreamLog
    async def create(self, generation_id: str) -> None:
        _, _, meta = self._keys(generation_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hsetnx(meta, "ls", 0)
        pipe.hsetnx(meta, "cs", 0)
        pipe.pexpire(meta, SAFETY_TTL_MS)
        await pipe.execute()

    async def append(self, generation_id: str, frame: Frame, text: str | None = None, *,
                     force: bool = False, base: tuple[str, int] | None = None) -> None:
        """Queues `frame`; a `done` frame, a forced one, or any frame when too many are queued,
        returns only once written. `force` writes past a seal and `base` first resets the
        content to (text, chunk seq): both for the process that ends a generation another
        one owned (services/scaleout/recovery.py)."""
        if self._closed:
            raise RuntimeError("stream log is closed")
        plain = not force and base is None
        if plain:
            error = self._failed.get(generation_id)
            if error is not None:
                raise error
        self._pending.append((generation_id, frame, text, force, base))
        self._queued[generation_id] = self._queued.get(generation_id, 0) + 1
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_loop())
        if frame.type != "chunk" or not plain or len(self._pending) > MAX_PENDING:
            await self.sync(generation_id)

    async def sync(self, generation_id: str | None = None) -> None:
        """Waits until every frame queued so far is written; raises the generation's refused
        write, if any."""
        if self._pending:
            if self._pending_fut is None:
                self._pending_fut = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._pending_fut)
        elif self._inflight_fut is not None and not self._inflight_fut.done():
            await asyncio.shield(self._inflight_fut)
        if generation_id is not None:
            error = self._failed.get(generation_id)
            if error is not None:
                raise error

    async def read(self, generation_id: str, after: int, limit: int = 512) -> ReadResult | None:
        if generation_id in self._queued:  # this process's own writes are visible to it
            await self.sync()
        watch = self._watches.get(generation_id)
        if watch is not None and watch.tail:
            tail = watch.tail
            first, last = tail[0].seq, tail[-1].seq
            if first <= after + 1 <= last:  # woken by a notification: it brought them
                start = after + 1 - first
                out = list(islice(tail, start, start + limit))
                return ReadResult(out, finished=out[-1].type == "done")
            if after >= last >= watch.latest and watch.ready.done():
                # Caught up with every frame notified on a live subscription: nothing newer
                # exists (a later write would have been notified; the listener re-checks
                # the last seqs in Redis every few seconds in case one was missed).
                return ReadResult([], finished=tail[-1].type == "done")
        # Readers of one generation wake together and ask for the same frames: one round trip.
        key = (generation_id, after, limit)
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.ensure_future(self._read(generation_id, after, limit))
            task.add_done_callback(lambda t: (self._reads.pop(key, None), t.cancelled() or t.exception()))
        return await asyncio.shield(task)

    async def _read(self, generation_id: str, after: int, limit: int) -> ReadResult | None:
        stream, _, meta = self._keys(generation_id)
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
        if generation_id in self._queued:
            await self.sync()
        _, content, meta = self._keys(generation_id)
        pipe = self.redis.pipeline(transaction=True)  # MULTI: consistent with appends
        pipe.get(content)
        pipe.hget(meta, "cs")
        text, chunk_seq = await pipe.execute()
        if chunk_seq is None:
            return None
        return (text or b"").decode(), int(chunk_seq)

    async def seal(self, generation_id: str) -> tuple[str, int] | None:
        """Refuses further appends from the generation's producer (a `force` append still
        goes in) and returns the snapshot at that instant, or None if the log is gone."""
        if generation_id in self._queued:
            await self.sync()
        stream, content, meta = self._keys(generation_id)
        result = await self._seal(keys=[stream, content, meta])
        if not result:
            return None
        return result[0].decode(), int(result[1])

    async def wait(self, generation_id: str, after: int, timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        watch = self._watches.get(generation_id) or self._watch(generation_id)
        watch.last_used = time.monotonic()
        if not watch.ready.done():
            try:
                async with asyncio.timeout_at(deadline):
                    await asyncio.shield(watch.ready)
            except TimeoutError:
                return False
        if watch.latest > after:
            return True
        if not watch.exists:
            return False
        fut = loop.create_future()
        watch.waiters.append(fut)
        try:
            async with asyncio.timeout_at(deadline):
                await fut
            return True
        except TimeoutError:
            return False
        finally:
            watch.last_used = time.monotonic()
            if not fut.done():
                fut.cancel()
                try:
                    watch.waiters.remove(fut)
                except ValueError:
                    pass

    async def expire(self, generation_id: str, ttl: float) -> None:
        self._produced.pop(generation_id, None)
        self._failed.pop(generation_id, None)
        ms = max(1, int(ttl * 1000))
        pipe = self.redis.pipeline(transaction=False)
        for key in self._keys(generation_id):
            pipe.pexpire(key, ms)
        await pipe.execute()

    def wake_all(self) -> None:
        for watch in self._watches.values():
            self._wake(watch)

    async def ping(self) -> None:
        await self.redis.ping()

    async def aclose(self) -> None:
        if self._flusher is not None and not self._flusher.done():
            try:
                await asyncio.wait_for(asyncio.shield(self._flusher), 10)
            except Exception:
                log.warning("stream log closed with unwritten frames")
        self._closed = True
        self.wake_all()
        for task in (self._listener, self._subscriber, self._checker, self._flusher):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except BaseException:
                    pass
        if self._pubsub is not None:
            try:
                await self._pubsub.aclose()
            except Exception:
                pass
        await self.redis.aclose()
