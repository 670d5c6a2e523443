"""In-process job dispatch for the embedded mode: one drainer task per session runs its
queued generations in order; generations never run inside a request or socket handler."""

import asyncio
import logging
from collections import deque

from services.generations.dispatch import Control, JobDispatch
from services.generations.runner import GenerationRunner
from services.generations.store import GenerationStore, Job

log = logging.getLogger(__name__)


class LocalDispatch(JobDispatch):
    def __init__(self, store: GenerationStore, runner: GenerationRunner):
        self.store = store
        self.runner = runner
        self.controls: dict[str, Control] = {}
        self._drainers: dict[str, asyncio.Task] = {}
        # Set on submit; a drainer that found nothing queued looks again if it was set
        # meanwhile, so a submit racing the drainer's last query is never stranded.
        self._wake: dict[str, bool] = {}
        self._closing = False
        # Generations claimed when they were stored (`claimer`): run before asking the DB.
        self._claimed: dict[str, deque[Job]] = {}

    def claimer(self, session_id: str) -> str | None:
        return None if self._closing or session_id in self._drainers else self.runner.worker_id

    async def submit(self, session_id: str, generation_id: str, job: Job | None = None) -> None:
        if self._closing:
            return
        if job is not None:  # stoppable from now on: it is already "running" in the store
            self.controls[generation_id] = Control()
            self._claimed.setdefault(session_id, deque()).append(job)
        self._wake[session_id] = True
        if session_id not in self._drainers:
            self._drainers[session_id] = asyncio.create_task(self._drain(session_id))

    async def _drain(self, session_id: str) -> None:
        claimed = self._claimed.setdefault(session_id, deque())
        try:
            while not self._closing:
                self._wake[session_id] = False
                job = claimed.popleft() if claimed else None
                # Not just the oldest queued one: an answer claimed when it was stored may not
                # have reached submit() yet, and nothing may start ahead of it.
                generation_id = job.generation_id if job else await self.store.next_runnable(session_id)
                if generation_id is None:
                    if self._wake.get(session_id) or claimed:
                        continue
                    break
                control = self.controls.setdefault(generation_id, Control())
                try:
                    await self.runner.run(generation_id, control, job)
                except Exception:
                    log.exception("generation %s failed outside its runner", generation_id)
                    await asyncio.sleep(0.5)  # a broken DB must not spin this loop
                finally:
                    self.controls.pop(generation_id, None)
        finally:
            self._drainers.pop(session_id, None)
            self._wake.pop(session_id, None)
            self._claimed.pop(session_id, None)

    async def cancel(self, generation_id: str) -> None:
        control = self.controls.get(generation_id)
        if control is not None:
            control.stop("cancelled")

    async def shutdown(self) -> None:
        """Ends running generations as interrupted (stored, with a done frame)."""
        self._closing = True
        for control in list(self.controls.values()):
            control.stop("shutdown")
        drainers = list(self._drainers.values())
        if drainers:
            await asyncio.wait(drainers, timeout=10)
