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

Batching: appends made while the previous round trip is in flight, or in the same loop tick,
go out together in one pipeline, the frames of one generation in one script call. A chunk's
`append` returns once the frame is queued; the `done` frame's (and any forced one's) returns
once it, and so everything before it, is stored in Redis. Order is kept: one pipeline at a
time, FIFO, and a failed round trip is retried (after reconnecting) before anything after it;
nothing queued is dropped. A write refused for a generation (conflict, seal) is raised by its
producer's next append. Frames queued but not yet written when the process dies were never
seen by a reader: the generation is then ended from what Redis has (services/scaleout/recovery.py).

Waiting: one pub/sub connection per process, one subscription per generation that has
readers here, and in-process futures for the readers; thousands of readers cost no Redis
connection each. The notification carries the frames ("<first seq>\n<type>\t<json>\n..."),
kept in a short per-generation tail, so readers woken together are served from memory
instead of each reading the stream. A subscription is dropped some seconds after its last
reader left.

Redis restarts: the client reconnects (redis-py retries plus our own retry loop for writes);
a log lost with the restart (no persistence) is rebuilt by its producer from the content it
wrote (kept in this process while it produces), so snapshots stay correct."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import deque
from itertools import islice

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.streaming.frames import Frame
from services.streaming.log import ReadResult, StreamLog

log = logging.getLogger(__name__)

SAFETY_TTL_MS = 24 * 3600 * 1000  # keys of a generation nobody expires (crashes) go after a day
WATCH_IDLE_SECONDS = 10.0  # a subscription with no reader for this long is dropped
MAX_CONNECTIONS = 64  # per process; commands queue for a free connection beyond that
MAX_PENDING = 10_000  # frames queued for writing before appends wait for Redis (backpressure)
TAIL_FRAMES = 256  # frames kept per watched generation from notifications
BATCH_LINGER = 0.001  # seconds a write batch waits for more frames ...
LINGER_UNTIL = 256  # ... unless this many are queued already
RESYNC_SECONDS = 5.0  # how often waited-on generations' last seqs are re-read (missed notifications)

# Results of the append script
APPLIED, DUPLICATE, CONFLICT, LOST, SEALED, NOT_CONTIGUOUS = 1, 2, -1, -2, -3, -4

APPEND_LUA = r"""
-- KEYS: 1 stream, 2 content, 3 meta
-- ARGV: 1 maxlen, 2 channel, 3 force, 4 has base, 5 base content, 6 base chunk seq,
--       7 text of this group's chunks, 8 seq of its last chunk (0: none), 9 safety ttl ms,
--       then seq, type, data for each frame, in seq order
local meta = KEYS[3]
local n = #ARGV
local first = tonumber(ARGV[10])
local last = tonumber(ARGV[n - 2])
for i = 13, n, 3 do  -- seqs must follow each other: check before writing anything
  if tonumber(ARGV[i]) ~= tonumber(ARGV[i - 3]) + 1 then return -4 end
end
local ls = redis.call('HGET', meta, 'ls')
if ls then
  ls = tonumber(ls)
  if first <= ls then
    local e = redis.call('XRANGE', KEYS[1], last .. '-1', last .. '-1')
    if e[1] and e[1][2][4] == ARGV[n] then return 2 end
    return -1
  end
  if ARGV[3] ~= '1' and redis.call('HEXISTS', meta, 'sealed') == 1 then return -3 end
  -- frames missing before this one (Redis restarted from a persistence file a little
  -- behind): rebuild like a lost log, so readers get a snapshot instead of a hole
  if first > ls + 1 and ARGV[4] ~= '1' then return -2 end
elseif first > 1 and ARGV[4] ~= '1' then
  return -2
end
if ARGV[4] == '1' then
  redis.call('SET', KEYS[2], ARGV[5])
  redis.call('HSET', meta, 'cs', ARGV[6])
end
for i = 10, n, 3 do
  redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], ARGV[i] .. '-1', 't', ARGV[i + 1], 'd', ARGV[i + 2])
end
if ARGV[8] ~= '0' then
  redis.call('APPEND', KEYS[2], ARGV[7])
  redis.call('HSET', meta, 'cs', ARGV[8])
end
redis.call('HSET', meta, 'ls', last)
if ARGV[n - 1] == 'done' then redis.call('HSET', meta, 'fin', 1) end
if not ls or first == 1 then
  redis.call('HSETNX', meta, 'cs', 0)
  for k = 1, 3 do redis.call('PEXPIRE', KEYS[k], ARGV[9]) end
end
local note = {ARGV[10]}
for i = 10, n, 3 do note[#note + 1] = ARGV[i + 1] .. '\t' .. ARGV[i + 2] end
redis.call('PUBLISH', ARGV[2], table.concat(note, '\n'))
return 1
"""

SEAL_LUA = """
local m = redis.call('HMGET', KEYS[3], 'ls', 'cs')
if not m[1] then return false end
redis.call('HSET', KEYS[3], 'sealed', 1)
return {redis.call('GET', KEYS[2]) or '', m[2] or '0', m[1]}
"""

# Session leases and takeovers live here too, so every Redis script is in one place.
ACQUIRE_LEASE_LUA = """
-- KEYS: 1 lease, ARGV: 1 me, 2 ttl ms, 3 liveness key prefix
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or redis.call('EXISTS', ARGV[3] .. cur) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RENEW_LEASE_LUA = """
-- still ours: extend; gone (Redis restarted): take it again; someone else's: lost
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] or not cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
RELEASE_LEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class StreamConflict(RuntimeError):
    """The frame's seq was already written by another party, or the log was sealed because
    another process ended the generation: the caller no longer owns it."""


class _Watch:
    """Readers of one generation in this process, and what its subscription knows."""

    __slots__ = ("channel", "ready", "latest", "exists", "waiters", "last_used", "tail")

    def __init__(self, channel: bytes, ready: asyncio.Future, tail_frames: int):
        self.channel = channel
        self.ready = ready  # set once subscribed and checked
        self.latest = 0  # highest seq known written
        self.exists = True
        self.waiters: list[asyncio.Future] = []
        self.last_used = time.monotonic()
        self.tail: deque[Frame] = deque(maxlen=tail_frames)  # contiguous seqs, from notifications

    def take(self, first: int, frames: list[Frame]) -> None:
        tail = self.tail
        for frame in frames:
            if tail and frame.seq != tail[-1].seq + 1:
                if frame.seq <= tail[-1].seq:
                    continue  # already have it
                tail.clear()  # a notification was missed: start again here
            tail.append(frame)
        last = first + len(frames) - 1
        self.latest = max(self.latest, last)


class RedisStreamLog(StreamLog):
    def __init__(self, redis_url: str, max_frames: int, key_prefix: str = "chat:",
                 max_connections: int = MAX_CONNECTIONS):
        self.max_frames = max_frames
        self.prefix = key_prefix
        retry = Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=6)
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

    # writing
    async def _flush_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            if len(self._pending) < LINGER_UNTIL:
                await asyncio.sleep(BATCH_LINGER)  # let other generations' tokens join the round trip
            batch, fut = self._pending, self._pending_fut or loop.create_future()
            self._pending, self._pending_fut, self._inflight_fut = [], None, fut
            try:
                self._failed.update(await self._write(batch))
                for item in batch:
                    left = self._queued.get(item[0], 1) - 1
                    if left > 0:
                        self._queued[item[0]] = left
                    else:
                        self._queued.pop(item[0], None)
            except BaseException as exc:
                if not fut.done():
                    fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stream log closed"))
                    fut.exception()  # retrieved here: waiters may all be gone
                raise
            if not fut.done():
                fut.set_result(None)

    def _calls(self, batch: list[tuple]) -> list[list]:
        """One script call per run of frames of one generation with the same flags."""
        calls: list[list] = []
        open_calls: dict[str, list] = {}
        for generation_id, frame, text, force, base in batch:
            call = open_calls.get(generation_id)
            if call is None or call[1] or force or base is not None or frame.seq != call[3][-1][0].seq + 1:
                call = [generation_id, force, base, []]
                calls.append(call)
                open_calls[generation_id] = call
            call[3].append((frame, text))
        return calls

    def _args(self, call: list, base: tuple[str, int] | None) -> list:
        generation_id, force, _, items = call
        texts, chunk_seq = [], 0
        for frame, text in items:
            if text is not None:
                texts.append(text)
                chunk_seq = frame.seq
        args = [self.max_frames, self._channel(generation_id), "1" if force else "0",
                "1" if base is not None else "0", base[0] if base else "", base[1] if base else 0,
                "".join(texts), chunk_seq, SAFETY_TTL_MS]
        for frame, _ in items:
            args += (frame.seq, frame.type, frame.data)
        return [self._append_sha, 3, *self._keys(generation_id), *args]

    def _repair_base(self, call: list) -> tuple[str, int] | None:
        produced = self._produced.get(call[0])
        if produced is None:
            return None
        parts = produced[0]
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return (parts[0] if parts else ""), produced[1]

    async def _write(self, batch: list[tuple]) -> dict[str, Exception]:
        errors: dict[str, Exception] = {}
        todo = [(call, call[2]) for call in self._calls(batch)]
        delay = 0.05
        while todo:
            pipe = self.redis.pipeline(transaction=False)
            for call, base in todo:
                pipe.execute_command("EVALSHA", *self._args(call, base))
            try:
                results = await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                if self._closed:
                    raise
                # Nothing is dropped: the same calls go again once Redis answers (a call that
                # had been applied is recognised as a duplicate).
                log.warning("stream log write failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            retry, rebuilt = [], set()
            for (call, base), result in zip(todo, results):
                generation_id = call[0]
                if isinstance(result, NoScriptError):
                    retry.append((call, base))
                elif generation_id in rebuilt:  # follows a call being rebuilt: goes after it
                    retry.append((call, None))
                elif isinstance(result, Exception):
                    errors[generation_id] = result
                elif result in (APPLIED, DUPLICATE):
                    self._written(call)
                    if call[1] or call[2] is not None:  # the ending written by another party:
                        errors.pop(generation_id, None)  # its caller gets no stale refusal
                        self._failed.pop(generation_id, None)
                elif result == LOST:
                    repair = self._repair_base(call)
                    if repair is not None:
                        log.warning("stream log of %s was lost (Redis restarted?); rebuilding it", generation_id)
                        retry.append((call, repair))
                        rebuilt.add(generation_id)
                    elif any(frame.type == "done" for frame, _ in call[3]):
                        pass  # readers fall back to the database, which already has the end
                    else:
                        errors[generation_id] = StreamConflict(f"stream log of {generation_id} was lost")
                else:
                    self._produced.pop(generation_id, None)
                    why = "seqs out of order" if result == NOT_CONTIGUOUS else "it was ended elsewhere"
                    errors[generation_id] = StreamConflict(
                        f"generation {generation_id}: seq {call[3][0][0].seq} refused ({why})")
            if any(isinstance(r, NoScriptError) for r in results):
                try:
                    await self.redis.script_load(APPEND_LUA)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    await asyncio.sleep(delay)  # retried with the calls
            todo = retry
        return errors

    def _written(self, call: list) -> None:
        generation_id, _, base, items = call
        if any(frame.type == "done" for frame, _ in items):
            self._produced.pop(generation_id, None)
            return
        produced = self._produced.get(generation_id)
        if produced is None or base is not None:
            produced = self._produced[generation_id] = [[base[0]] if base else [], base[1] if base else 0]
        for frame, text in items:
            if text is not None:
                produced[0].append(text)
                produced[1] = frame.seq

    # waiting
    def _watch(self, generation_id: str) -> _Watch:
        loop = asyncio.get_running_loop()
        watch = _Watch(self._channel(generation_id), loop.create_future(), self.tail_frames)
        self._watches[generation_id] = watch
        self._by_channel[watch.channel] = generation_id
        self._to_subscribe.add(watch.channel)
        if self._subscribe_wanted is None:
            self._subscribe_wanted = asyncio.Event()
        self._subscribe_wanted.set()
        if self._subscriber is None or self._subscriber.done():
            self._subscriber = loop.create_task(self._subscribe_loop())
        return watch

    @staticmethod
    def _wake(watch: _Watch) -> None:
        if watch.waiters:
            waiters, watch.waiters = watch.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def _subscribe_loop(self) -> None:
        """Sends SUBSCRIBE for new watches (the listener reads the confirmations)."""
        delay = 0.1
        while not self._closed:
            await self._subscribe_wanted.wait()
            self._subscribe_wanted.clear()
            channels = list(self._to_subscribe)
            if not channels:
                continue
            try:
                if self._pubsub is None:
                    self._pubsub = self.redis.pubsub()
                await self._pubsub.subscribe(*channels)
                self._to_subscribe.difference_update(channels)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("stream log subscribe failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                self._subscribe_wanted.set()
                continue
            if self._listener is None or self._listener.done():
                self._listener = asyncio.get_running_loop().create_task(self._listen())

    async def _listen(self) -> None:
        delay = 0.1
        last_gc = last_resync = time.monotonic()
        while not self._closed:
            try:
                message = await self._pubsub.get_message(timeout=1.0)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # Lost the connection: readers re-read (and fall back to the database if the
                # log went with Redis); redis-py resubscribes when it reconnects.
                log.warning("stream log listener: %s; reconnecting", type(exc).__name__)
                for watch in self._watches.values():
                    watch.tail.clear()
                self.wake_all()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if message is not None:
                kind = message["type"]
                generation_id = self._by_channel.get(message["channel"])
                watch = self._watches.get(generation_id) if generation_id else None
                if watch is not None:
                    if kind == "message":
                        first, got = _parse_note(generation_id, message["data"])
                        watch.take(first, got)
                        watch.exists = True
                        self._wake(watch)
                    elif kind == "subscribe":
                        # first subscription, or a resubscription after a reconnect: check
                        # what was written while we were not listening
                        watch.tail.clear()
                        self._check_later(generation_id)
            now = time.monotonic()
            if now - last_gc > 2.0:
                last_gc = now
                await self._collect(now)
            if now - last_resync > RESYNC_SECONDS:
                last_resync = now
                for generation_id, watch in self._watches.items():
                    if watch.waiters:
                        self._check_later(generation_id)

    def _check_later(self, generation_id: str) -> None:
        self._checking.add(generation_id)
        if self._checker is None or self._checker.done():
            self._checker = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        """Reads the last seq of newly (re)subscribed generations, in one round trip."""
        delay = 0.1
        while self._checking and not self._closed:
            ids = [g for g in self._checking if g in self._watches]
            self._checking.clear()
            if not ids:
                continue
            pipe = self.redis.pipeline(transaction=False)
            for generation_id in ids:
                pipe.hget(self._keys(generation_id)[2], "ls")
            try:
                results = await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._checking.update(ids)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for generation_id, last in zip(ids, results):
                watch = self._watches.get(generation_id)
                if watch is None:
                    continue
                watch.exists = last is not None
                if last is not None and int(last) > watch.latest:
                    watch.latest = int(last)
                if not watch.ready.done():
                    watch.ready.set_result(None)
                self._wake(watch)

    async def _collect(self, now: float) -> None:
        idle = [g for g, w in self._watches.items()
                if not w.waiters and w.ready.done() and now - w.last_used > WATCH_IDLE_SECONDS]
        if not idle:
            return
        channels = []
        for generation_id in idle:
            watch = self._watches.pop(generation_id)
            self._by_channel.pop(watch.channel, None)
            channels.append(watch.channel)
        try:
            await self._pubsub.unsubscribe(*channels)
        except Exception:
            pass  # the connection is gone; it resubscribes only what is still wanted


def _parse_note(generation_id: str, data: bytes) -> tuple[int, list[Frame]]:
    """A notification: "<first seq>\n<type>\t<json>\n..." (JSON text has no raw newline)."""
    lines = data.decode().split("\n")
    first = int(lines[0])
    out = []
    for i, line in enumerate(lines[1:]):
        kind, _, body = line.partition("\t")
        out.append(Frame(first + i, kind, body))
    return first, out
