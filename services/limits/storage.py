"""Where the `limits` library keeps its counters: process memory when embedded, Redis
(shared by every replica) in the scale-out mode."""

import time
from itertools import islice

from limits.aio.storage import MemoryStorage, RedisStorage, Storage


class BoundedMemoryStorage(MemoryStorage):
    """The library's memory storage for fixed windows, with a bounded table.

    `incr` is replaced: the library's one keeps an asyncio.Lock per key (a few hundred bytes
    each, pointless on one event loop, where nothing here awaits) and rescans every key after
    each increment. Here expired counters are dropped at most once per `purge_every`
    seconds, and when the table is full the oldest windows go first."""

    def __init__(self, max_keys: int, purge_every: float = 1.0):
        super().__init__()
        self.max_keys = max_keys
        self.purge_every = purge_every
        self._next_purge = 0.0

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        if self.expirations.get(key, now + 1) <= now:
            self._drop(key)
        if key not in self.storage:
            if now >= self._next_purge or len(self.storage) >= self.max_keys:
                self._purge(now)
            if len(self.storage) >= self.max_keys:
                for old in list(islice(self.expirations, max(1, self.max_keys // 100))):
                    self._drop(old)
            self.expirations[key] = now + expiry
        self.storage[key] += amount
        return self.storage[key]

    def _drop(self, key: str) -> None:
        self.storage.pop(key, None)
        self.expirations.pop(key, None)
        self.locks.pop(key, None)

    def _purge(self, now: float) -> None:
        self._next_purge = now + self.purge_every
        for key in [k for k, at in self.expirations.items() if at <= now]:
            self._drop(key)


def build_storage(redis_url: str | None, key_prefix: str, max_keys: int) -> Storage:
    if redis_url:
        # redis-py (already a dependency) rather than the library's default client, coredis.
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        # wrap_exceptions: every Redis failure arrives as limits' StorageError (service.py).
        return RedisStorage(uri, implementation="redispy", key_prefix=key_prefix + "limits", wrap_exceptions=True)
    return BoundedMemoryStorage(max_keys)
