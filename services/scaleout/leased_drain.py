"""A session drained by a scale-out worker under its lease (services/scaleout/worker.py
explains the lease and the race it covers): the drain loop's turn for the worker."""

import asyncio

from services.generations.drain import DrainLoop, DrainTurn
from services.generations.store_protocol import GenerationStore
from services.scaleout.leases import Leases

TAKEOVER_POLL = 0.25  # seconds between tries at the lease of a session whose holder may be dead


class LeasedTurn(DrainTurn):
    def __init__(self, store: GenerationStore, session_id: str, leases: Leases, loop: DrainLoop):
        super().__init__(store, session_id)
        self.leases, self.loop = leases, loop

    def holds(self) -> bool:
        return self.session_id not in self.leases.lost

    async def idle(self) -> bool:
        await self.leases.release(self.session_id)
        # Someone may have given up on the lease while we held it: look again.
        if await self.store.next_runnable(self.session_id) is not None or self.loop.woken(self.session_id):
            return await self.leases.acquire(self.session_id)
        return False

    async def left_at_close(self) -> bool:
        return await self.store.next_runnable(self.session_id) is not None

    async def await_lease(self, heartbeat_timeout: float) -> bool:
        """After the lease was refused: while the session has a generation ready to start
        (none running), its holder may be a worker that died before its liveness key
        expired (a reaper or a redelivery ended its generation first). Acking the job then
        would leave the session to nobody until STUCK_QUEUE_AFTER; instead the lease is taken
        over once that key expires. False as soon as the holder starts the generation, or
        after WORKER_HEARTBEAT_TIMEOUT: a live holder drains the session."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + heartbeat_timeout + 1
        while not self.loop.closing and loop.time() < deadline:
            if await self.store.next_runnable(self.session_id) is None:
                return False
            await asyncio.sleep(TAKEOVER_POLL)
            if await self.leases.acquire(self.session_id):
                return True
        return False
