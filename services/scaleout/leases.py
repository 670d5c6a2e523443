"""Worker liveness and per-session leases in Redis (see services/scaleout/worker.py for why
a session has a lease, and docs/architecture.md for the bounds they give). They share the
stream log's Redis client and key prefix."""

import asyncio
import logging

import redis.asyncio as aioredis

from services.streaming.redis_scripts import Keys

log = logging.getLogger(__name__)

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


class Liveness:
    """Workers' liveness keys and once-per-interval markers, as every scale-out process
    (API replica or worker) reads them."""

    def __init__(self, redis: aioredis.Redis, keys: Keys):
        self.redis = redis
        self.keys = keys

    def alive_key(self, worker_id: str) -> str:
        return self.keys.key("worker", worker_id)

    async def alive(self, worker_ids: list[str]) -> dict[str, bool]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in worker_ids:
                pipe.exists(self.alive_key(worker_id))
            return {w: bool(n) for w, n in zip(worker_ids, await pipe.execute(), strict=True)}  # a reply per command

    async def first(self, kind: str, name: str, ttl_ms: int) -> bool:
        """True for the first process to ask within `ttl_ms` (a key that expires)."""
        return bool(await self.redis.set(self.keys.key(kind, name), "1", nx=True, px=ttl_ms))


class Leases(Liveness):
    """One worker's liveness key and the session leases it holds (`held`); a lease another
    worker took while this one could not renew it goes to `lost`."""

    def __init__(self, redis: aioredis.Redis, keys: Keys, worker_id: str, ttl_ms: int):
        super().__init__(redis, keys)
        self.worker_id = worker_id
        self.ttl_ms = ttl_ms
        self.held: set[str] = set()
        self.lost: set[str] = set()
        self._acquire = redis.register_script(ACQUIRE_LEASE_LUA)
        self._renew = redis.register_script(RENEW_LEASE_LUA)
        self._release = redis.register_script(RELEASE_LEASE_LUA)

    def _lease_key(self, session_id: str) -> str:
        return self.keys.key("lease", session_id)

    async def beat(self) -> None:
        await self.redis.set(self.alive_key(self.worker_id), "1", px=self.ttl_ms)
        for session_id in list(self.held):
            if not await self._renew(keys=[self._lease_key(session_id)], args=[self.worker_id, self.ttl_ms]):
                log.warning("lost the lease of session %s; stopping its drain after this generation", session_id)
                self.held.discard(session_id)
                self.lost.add(session_id)

    async def heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.beat()
            except Exception as exc:
                log.warning("heartbeat to Redis failed: %s", type(exc).__name__)

    async def is_alive(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(self.alive_key(worker_id)))

    async def acquire(self, session_id: str) -> bool:
        ok = await self._acquire(
            keys=[self._lease_key(session_id)], args=[self.worker_id, self.ttl_ms, self.alive_key("")]
        )
        if ok:
            self.held.add(session_id)
            self.lost.discard(session_id)
        return bool(ok)

    async def release(self, session_id: str) -> None:
        self.held.discard(session_id)
        await self._release(keys=[self._lease_key(session_id)], args=[self.worker_id])

    async def release_all(self) -> None:
        """At shutdown: every lease held, and the liveness key."""
        for session_id in list(self.held):
            await self.release(session_id)
        await self.redis.delete(self.alive_key(self.worker_id))
