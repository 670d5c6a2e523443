"""Waiting for the Redis stream log (the `_Waiting` half of RedisStreamLog).

Waiting: one pub/sub connection per process, one subscription per generation that has
readers here, and in-process futures for the readers; thousands of readers cost no Redis
connection each. The notification carries the frames ("<first seq>\n<type>\t<json>\n..."),
kept in a short per-generation tail, so readers woken together are served from memory
instead of each reading the stream. A subscription is dropped some seconds after its last
reader left."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

from services.streaming.frames import Frame

log = logging.getLogger(__name__)

WATCH_IDLE_SECONDS = 10.0  # a subscription with no reader for this long is dropped
RESYNC_SECONDS = 5.0  # how often waited-on generations' last seqs are re-read (missed notifications)


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


class _Waiting:
    """Subscriptions and in-process waiters; state lives on RedisStreamLog (`_watches`,
    `_by_channel`, `_pubsub`, ...)."""

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
