"""Open streams (WebSockets and SSE responses) per user, counted across replicas.

Not a rate, so not the `limits` library: a slot is held while a stream is open. In memory a
counter per user; in Redis a sorted set per user of the slots held, each scored by when its
lease ends. A process renews the leases of its open streams every third of the lease, so
the slots of a process that died free themselves within one lease."""

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from typing import Protocol

from redis.exceptions import RedisError

_ACQUIRE = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
"""


class SlotsUnavailable(Exception):
    """The shared count could not be reached."""


class Slots(Protocol):
    """The count of a user's open streams: MemorySlots in one process, RedisSlots across them."""

    async def acquire(self, user_id: str, limit: int) -> str | None: ...

    async def release(self, user_id: str, slot: str) -> None: ...

    async def aclose(self) -> None: ...


class MemorySlots:
    def __init__(self) -> None:
        self.held: Counter[str] = Counter()

    async def acquire(self, user_id: str, limit: int) -> str | None:
        if self.held[user_id] >= limit:
            return None
        self.held[user_id] += 1
        return user_id

    async def release(self, user_id: str, slot: str) -> None:
        self.held[user_id] -= 1
        if self.held[user_id] <= 0:
            del self.held[user_id]

    async def aclose(self) -> None:
        return None


class RedisSlots:
    def __init__(self, redis_url: str, key_prefix: str, lease: float = 60.0):
        from redis.asyncio import Redis

        self.redis = Redis.from_url(redis_url)
        self.prefix = key_prefix + "streams:"
        self.lease = lease
        self.mine: dict[str, tuple[str, str]] = {}  # slot -> (user, key)
        self._acquire = self.redis.register_script(_ACQUIRE)
        self._renewer: asyncio.Task[None] | None = None

    async def acquire(self, user_id: str, limit: int) -> str | None:
        """A slot, or None when `limit` are held; SlotsUnavailable when Redis cannot say."""
        slot, key, now = uuid.uuid4().hex, self.prefix + user_id, time.time()
        try:
            ok = await self._acquire(keys=[key], args=[now, now + self.lease, limit, slot, int(self.lease * 2000)])
        except (RedisError, OSError) as exc:
            raise SlotsUnavailable(str(exc)) from exc
        if not ok:
            return None
        self.mine[slot] = (user_id, key)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())
        return slot

    async def release(self, user_id: str, slot: str) -> None:
        entry = self.mine.pop(slot, None)
        if entry is not None:
            with contextlib.suppress(RedisError, OSError):  # unreleased, its lease runs out
                await self.redis.zrem(entry[1], slot)

    async def _renew(self) -> None:
        while self.mine:
            await asyncio.sleep(self.lease / 3)
            until = time.time() + self.lease
            async with self.redis.pipeline(transaction=False) as pipe:
                for slot, (_, key) in list(self.mine.items()):
                    pipe.zadd(key, {slot: until}, xx=True)
                    pipe.pexpire(key, int(self.lease * 2000))
                with contextlib.suppress(RedisError, OSError):  # Redis blinked: the next round renews
                    await pipe.execute()

    async def aclose(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
        await self.redis.aclose()
