"""Worker liveness and per-session leases in Redis (see services/scaleout/worker.py for why
a session has a lease, and docs/architecture.md for the bounds they give)."""

import asyncio
import logging

log = logging.getLogger(__name__)


class Leases:
    """Mixed into Worker: uses its settings `s`, `store`, `log` (the Redis stream log),
    `redis`, `worker_id`, `_ttl_ms`, `_held`, `_lost` and `_closing`."""

    def _alive_key(self, worker_id: str) -> str:
        return self.log.key("worker", worker_id)

    def _lease_key(self, session_id: str) -> str:
        return self.log.key("lease", session_id)

    async def _beat(self) -> None:
        await self.redis.set(self._alive_key(self.worker_id), "1", px=self._ttl_ms)
        for session_id in list(self._held):
            if not await self.log.renew_lease_script(keys=[self._lease_key(session_id)],
                                                     args=[self.worker_id, self._ttl_ms]):
                log.warning("lost the lease of session %s; stopping its drain after this generation", session_id)
                self._held.discard(session_id)
                self._lost.add(session_id)

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.worker_heartbeat_timeout / 3)
            try:
                await self._beat()
            except Exception as exc:
                log.warning("heartbeat to Redis failed: %s", type(exc).__name__)

    async def is_alive(self, worker_id: str) -> bool:
        return bool(await self.redis.exists(self._alive_key(worker_id)))

    async def _acquire(self, session_id: str) -> bool:
        ok = await self.log.acquire_lease_script(
            keys=[self._lease_key(session_id)], args=[self.worker_id, self._ttl_ms, self.log.key("worker", "")])
        if ok:
            self._held.add(session_id)
            self._lost.discard(session_id)
        return bool(ok)

    async def _release(self, session_id: str) -> None:
        self._held.discard(session_id)
        await self.log.release_lease_script(keys=[self._lease_key(session_id)], args=[self.worker_id])

    async def _await_lease(self, session_id: str) -> bool:
        """After the lease was refused: while the session has a generation ready to start
        (none running), its holder may be a worker that died before its liveness key
        expired (a reaper or a redelivery ended its generation first). Acking the job then
        would leave the session to nobody until STUCK_QUEUE_AFTER; instead the lease is taken
        over once that key expires. False as soon as the holder starts the generation, or
        after WORKER_HEARTBEAT_TIMEOUT: a live holder drains the session."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.s.worker_heartbeat_timeout + 1
        while not self._closing and loop.time() < deadline:
            if await self.store.next_runnable(session_id) is None:
                return False
            await asyncio.sleep(0.25)
            if await self._acquire(session_id):
                return True
        return False
