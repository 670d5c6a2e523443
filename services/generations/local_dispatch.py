"""Embedded-mode dispatch: one drain task per session (the drain loop of drain.py) runs its
generations in order; generations never run inside a request or socket handler."""

import asyncio
from collections import deque

from services.generations.dispatch import Control, JobDispatch
from services.generations.drain import DrainLoop, DrainTurn
from services.generations.runner import GenerationRunner
from services.generations.store_protocol import GenerationStore, Job


class _Claimed(DrainTurn):
    """Runs the generations claimed when they were stored (`claimer`) before asking the DB."""

    def __init__(self, store: GenerationStore, session_id: str, claimed: deque[Job]):
        super().__init__(store, session_id)
        self.claimed = claimed

    async def next(self) -> tuple[str, Job | None] | None:
        # Not just the oldest queued one: an answer claimed when it was stored may not have
        # reached submit() yet, and nothing may start ahead of it.
        if self.claimed:
            job = self.claimed.popleft()
            return job.generation_id, job
        return await super().next()

    async def idle(self) -> bool:
        return bool(self.claimed)


class LocalDispatch(JobDispatch):
    def __init__(self, store: GenerationStore, runner: GenerationRunner):
        self.store = store
        self.runner = runner
        self.loop = DrainLoop(store, runner)
        self.controls = self.loop.controls
        self._drainers: dict[str, asyncio.Task[bool]] = {}
        # Generations claimed when they were stored (`claimer`): run before asking the DB.
        self._claimed: dict[str, deque[Job]] = {}

    def claimer(self, session_id: str) -> str | None:
        return None if self.loop.closing or session_id in self._drainers else self.runner.worker_id

    async def submit(self, session_id: str, generation_id: str, job: Job | None = None) -> None:
        if self.loop.closing:
            return
        if job is not None:  # stoppable from now on: it is already "running" in the store
            self.controls[generation_id] = Control()
            self._claimed.setdefault(session_id, deque()).append(job)
        self.loop.wake(session_id)
        if session_id not in self._drainers:
            self._drainers[session_id] = asyncio.create_task(self._drain(session_id))

    async def _drain(self, session_id: str) -> bool:
        claimed = self._claimed.setdefault(session_id, deque())
        try:
            return await self.loop.drain(_Claimed(self.store, session_id, claimed))
        finally:
            self._drainers.pop(session_id, None)
            self._claimed.pop(session_id, None)

    async def cancel(self, generation_id: str) -> None:
        self.loop.cancel(generation_id)

    async def shutdown(self) -> None:
        """Ends running generations as interrupted (stored, with a done frame)."""
        self.loop.closing = True
        self.loop.stop_all("shutdown")
        drainers = list(self._drainers.values())
        if drainers:
            await asyncio.wait(drainers, timeout=10)
