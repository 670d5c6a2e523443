"""The Redis stream log's writer (RedisStreamLog holds one).

Batching: appends made while the previous round trip is in flight, or in the same loop tick,
go out together in one pipeline, the frames of one generation in one script call. A chunk's
`append` returns once the frame is queued; the `done` frame's (and any forced one's) returns
once it, and so everything before it, is stored in Redis. Order is kept: one pipeline at a
time, FIFO, and a failed round trip is retried (after reconnecting) before anything after it;
nothing queued is dropped. A write refused for a generation (conflict, seal) is raised by its
producer's next append. Frames queued but not yet written when the process dies were never
seen by a reader: the generation is then ended from what Redis has (services/scaleout/recovery.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from services.streaming.frames import Frame
from services.streaming.log import StreamConflict
from services.streaming.redis_scripts import APPEND_LUA, APPLIED, DUPLICATE, LOST, NOT_CONTIGUOUS, SAFETY_TTL_MS, Keys

log = logging.getLogger(__name__)

BATCH_LINGER = 0.001  # seconds a write batch waits for more frames ...
LINGER_UNTIL = 256  # ... unless this many are queued already
MAX_PENDING = 10_000  # frames queued for writing before appends wait for Redis (backpressure)


class RedisWriter:
    """Batches appends into pipelines of one script call per generation."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, max_frames: int):
        self.redis, self.keys, self.max_frames = redis, keys, max_frames
        self._append_sha = hashlib.sha1(APPEND_LUA.encode()).hexdigest()
        self._pending: list[tuple[Any, ...]] = []
        self._pending_fut: asyncio.Future[None] | None = None  # resolved when the queued batch is written
        self._inflight_fut: asyncio.Future[None] | None = None  # ... and the batch being written
        self._flusher: asyncio.Task[None] | None = None
        self._failed: dict[str, Exception] = {}  # generation -> its refused write
        self._queued: dict[str, int] = {}  # generation -> frames queued or in flight from here
        self._produced: dict[str, list[Any]] = {}  # generation -> [parts, last chunk seq] written from here
        self._closed = False

    def queued(self, generation_id: str) -> bool:
        """Frames of the generation are queued or in flight from this process."""
        return generation_id in self._queued

    async def append(
        self, generation_id: str, frame: Frame, text: str | None, force: bool, base: tuple[str, int] | None
    ) -> None:
        """See RedisStreamLog.append."""
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

    def forget(self, generation_id: str) -> None:
        """The generation is done: drop what was kept to rebuild or refuse its writes."""
        self._produced.pop(generation_id, None)
        self._failed.pop(generation_id, None)

    async def aclose(self) -> None:
        """Waits a little for the frames still queued, then stops writing."""
        flusher = self._flusher
        if flusher is not None and not flusher.done():
            try:
                await asyncio.wait_for(asyncio.shield(flusher), 10)
            except Exception:
                log.warning("stream log closed with unwritten frames")
        self._closed = True
        if flusher is not None and not flusher.done():
            flusher.cancel()
            try:
                await flusher
            except BaseException:
                pass

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

    def _calls(self, batch: list[tuple[Any, ...]]) -> list[list[Any]]:
        """One script call per run of frames of one generation with the same flags."""
        calls: list[list[Any]] = []
        open_calls: dict[str, list[Any]] = {}
        for generation_id, frame, text, force, base in batch:
            call = open_calls.get(generation_id)
            if call is None or call[1] or force or base is not None or frame.seq != call[3][-1][0].seq + 1:
                call = [generation_id, force, base, []]
                calls.append(call)
                open_calls[generation_id] = call
            call[3].append((frame, text))
        return calls

    def _args(self, call: list[Any], base: tuple[str, int] | None) -> list[Any]:
        generation_id, force, _, items = call
        texts, chunk_seq = [], 0
        for frame, text in items:
            if text is not None:
                texts.append(text)
                chunk_seq = frame.seq
        args = [
            self.max_frames,
            self.keys.channel(generation_id),
            "1" if force else "0",
            "1" if base is not None else "0",
            base[0] if base else "",
            base[1] if base else 0,
            "".join(texts),
            chunk_seq,
            SAFETY_TTL_MS,
        ]
        for frame, _ in items:
            args += (frame.seq, frame.type, frame.data)
        return [self._append_sha, 3, *self.keys.of(generation_id), *args]

    def _repair_base(self, call: list[Any]) -> tuple[str, int] | None:
        produced = self._produced.get(call[0])
        if produced is None:
            return None
        parts = produced[0]
        if len(parts) > 1:
            parts[:] = ["".join(parts)]
        return (parts[0] if parts else ""), produced[1]

    async def _write(self, batch: list[tuple[Any, ...]]) -> dict[str, Exception]:
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
            for (call, base), result in zip(todo, results, strict=True):  # one reply per queued command
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
                        f"generation {generation_id}: seq {call[3][0][0].seq} refused ({why})"
                    )
            if any(isinstance(r, NoScriptError) for r in results):
                try:
                    await self.redis.script_load(APPEND_LUA)
                except (RedisConnectionError, RedisTimeoutError, OSError):
                    await asyncio.sleep(delay)  # retried with the calls
            todo = retry
        return errors

    def _written(self, call: list[Any]) -> None:
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
