"""The drain loop shared by the embedded dispatch (local_dispatch.py) and the scale-out
worker (services/scaleout/worker.py): a session's runnable generations run one at a time,
in order, until none is left.

What the two share is here: the wake flag (set when another job for a session being drained
arrives, so a drain that just found nothing looks again before it ends: a submit racing its
last query is never stranded), the next-runnable loop, the controls that stop a running
generation, and the failure path. What differs is the session's `DrainTurn`: where the next
generation comes from, whether this process still holds the session, what it does when it
finds nothing, and what is left when the process closes."""

import asyncio
import logging

from services.generations.dispatch import Control
from services.generations.runner import GenerationRunner
from services.generations.store_protocol import GenerationStore, Job
from services.streaming.log import StreamConflict

log = logging.getLogger(__name__)

FAILURE_PAUSE = 0.5  # seconds after a generation failed outside its runner: a broken DB must not spin


class DrainTurn:
    """One session's drain as its owner sees it; these defaults are the embedded ones."""

    def __init__(self, store: GenerationStore, session_id: str):
        self.store = store
        self.session_id = session_id

    async def next(self) -> tuple[str, Job | None] | None:
        """The next generation to run and its job if it is already claimed, or None."""
        generation_id = await self.store.next_runnable(self.session_id)
        return None if generation_id is None else (generation_id, None)

    def holds(self) -> bool:
        """False once this process may no longer drain the session."""
        return True

    async def idle(self) -> bool:
        """Nothing runnable was found: True to look again, False to end the drain."""
        return False

    async def left_at_close(self) -> bool:
        """The process is closing: True if the session has work left (its job is requeued)."""
        return False


class DrainLoop:
    def __init__(self, store: GenerationStore, runner: GenerationRunner):
        self.store = store
        self.runner = runner
        self.controls: dict[str, Control] = {}
        self.closing = False
        self._wake: dict[str, bool] = {}

    def wake(self, session_id: str) -> None:
        """Another job for the session: its drain looks again before it ends."""
        self._wake[session_id] = True

    def woken(self, session_id: str) -> bool:
        return self._wake.get(session_id, False)

    def forget(self, session_id: str) -> None:
        """The session's drain ended here (or never started): drop its flag."""
        self._wake.pop(session_id, None)

    async def drain(self, turn: DrainTurn) -> bool:
        """Runs the session's generations; True if the drain stopped with work left."""
        session_id = turn.session_id
        try:
            while True:
                self._wake[session_id] = False
                if self.closing:
                    return await turn.left_at_close()
                if not turn.holds():
                    return False
                found = await turn.next()
                if found is None:
                    if self._wake.get(session_id) or await turn.idle():
                        continue
                    return False
                await self.run(*found)
        finally:
            self.forget(session_id)

    async def run(self, generation_id: str, job: Job | None) -> None:
        control = self.controls.setdefault(generation_id, Control())
        try:
            await self.runner.run(generation_id, control, job)
        except StreamConflict as exc:  # another process ended it (scale-out recovery)
            log.warning("generation %s: %s", generation_id, exc)
        except Exception:
            log.exception("generation %s failed outside its runner", generation_id)
            await asyncio.sleep(FAILURE_PAUSE)
        finally:
            self.controls.pop(generation_id, None)

    def cancel(self, generation_id: str) -> None:
        control = self.controls.get(generation_id)
        if control is not None:
            control.stop("cancelled")

    def stop_all(self, reason: str) -> None:
        for control in list(self.controls.values()):
            control.stop(reason)
