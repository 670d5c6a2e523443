"""The Redis stream log's watcher (RedisStreamLog holds one): waiting for new frames.

Waiting: one pub/sub connection per process, one subscription per generation that has
readers here, and in-process futures for the readers; thousands of readers cost no Redis
connection each. The notification carries the frames ("<first seq>\n<type>\t<json>\n..."),
kept in a short per-generation tail (redis_tail.py), so readers woken together are served
from memory instead of each reading the stream. A subscription is dropped some seconds after
its last reader left."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import redis.asyncio as aioredis

from services.streaming.log import ReadResult
from services.streaming.redis_scripts import Keys
from services.streaming.redis_tail import Watch, parse_note

log = logging.getLogger(__name__)

WATCH_IDLE_SECONDS = 10.0  # a subscription with no reader for this long is dropped
RESYNC_SECONDS = 5.0  # how often waited-on generations' last seqs are re-read (missed notifications)


class RedisWatcher:
    """Subscriptions and in-process waiters."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, tail_frames: int):
        self.redis, self.keys, self.tail_frames = redis, keys, tail_frames
        self._watches: dict[str, Watch] = {}
        self._by_channel: dict[bytes, str] = {}
        self._to_subscribe: set[bytes] = set()
        self._subscribe_wanted = asyncio.Event()
        self._pubsub: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._subscriber: asyncio.Task[None] | None = None
        self._checking: set[str] = set()
        self._checker: asyncio.Task[None] | None = None
        self._closed = False

    def cached(self, generation_id: str, after: int, limit: int) -> ReadResult | None:
        """A read answered from what the notifications brought, or None."""
        watch = self._watches.get(generation_id)
        return watch.cached(after, limit) if watch is not None else None

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
        fut: asyncio.Future[None] = loop.create_future()
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

    def wake_all(self) -> None:
        for watch in self._watches.values():
            watch.wake()

    async def aclose(self) -> None:
        self._closed = True
        self.wake_all()
        for task in (self._listener, self._subscriber, self._checker):
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

    def _watch(self, generation_id: str) -> Watch:
        loop = asyncio.get_running_loop()
        watch = Watch(self.keys.channel(generation_id), loop.create_future(), self.tail_frames)
        self._watches[generation_id] = watch
        self._by_channel[watch.channel] = generation_id
        self._to_subscribe.add(watch.channel)
        self._subscribe_wanted.set()
        if self._subscriber is None or self._subscriber.done():
            self._subscriber = loop.create_task(self._subscribe_loop())
        return watch

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
                found = self._watches.get(generation_id) if generation_id else None
                if found is not None and generation_id is not None:
                    watch = found
                    if kind == "message":
                        first, got = parse_note(message["data"])
                        watch.take(first, got)
                        watch.exists = True
                        watch.wake()
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
                pipe.hget(self.keys.of(generation_id)[2], "ls")
            try:
                results = await pipe.execute()
            except asyncio.CancelledError:
                raise
            except Exception:
                self._checking.update(ids)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            for generation_id, last in zip(ids, results, strict=True):  # one reply per queued command
                watch = self._watches.get(generation_id)
                if watch is None:
                    continue
                watch.exists = last is not None
                if last is not None and int(last) > watch.latest:
                    watch.latest = int(last)
                if not watch.ready.done():
                    watch.ready.set_result(None)
                watch.wake()

    async def _collect(self, now: float) -> None:
        idle = [
            g
            for g, w in self._watches.items()
            if not w.waiters and w.ready.done() and now - w.last_used > WATCH_IDLE_SECONDS
        ]
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
