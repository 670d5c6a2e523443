"""The reaper runs in every scale-out process (API replicas and workers), every
REAPER_INTERVAL seconds (with jitter, so processes spread out):

1. A `running` generation whose heartbeat is older than WORKER_HEARTBEAT_TIMEOUT lost its
   worker: it is ended `interrupted` (services/scaleout/recovery.py), so readers never hang.
   Its session's queued generations are then handed to a worker again (a job is published).
2. A session whose oldest queued generation is older than STUCK_QUEUE_AFTER, with nothing
   running, has nobody draining it (a replica died between storing the message and
   publishing its job, or holding jobs it accepted while the broker was away: a live
   replica publishes those itself on reconnection, services/scaleout/backlog.py): its job
   is published again. Duplicate jobs are harmless: a worker
   only ever starts a session's oldest queued generation, through a conditional claim.

3. Every DEAD_WORKER_CHECK_INTERVAL, the workers of running generations are checked: one
   whose liveness key is gone (it expires WORKER_HEARTBEAT_TIMEOUT after the worker's last
   beat) and whose generations' heartbeats have stopped too has its generations ended and
   their sessions handed on at once, without waiting for the heartbeat age above. The
   database heartbeat guards a live worker whose key vanished with a Redis restart.

Several reapers racing on one generation are safe: the conditional UPDATE has one winner.
Re-publishing is deduplicated across processes with a short Redis key per session."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from config import Settings
from models.db import utcnow
from services.generations.store_protocol import GenerationStore
from services.scaleout.leases import Liveness
from services.scaleout.recovery import end_interrupted
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)


class Reaper:
    def __init__(
        self,
        settings: Settings,
        store: GenerationStore,
        stream_log: StreamLog,
        liveness: Liveness,
        kick: Callable[[str, str], Awaitable[None]] | None = None,
    ):
        self.s = settings
        self.store = store
        self.log = stream_log
        self.liveness = liveness
        self.kick = kick
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._loop(self.run_once, self.s.reaper_interval)),
                asyncio.create_task(self._loop(self.reap_dead_workers, self.s.dead_worker_check_interval)),
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except BaseException:
                pass
        self._tasks = []

    async def _loop(self, one_pass: Callable[[], Awaitable[int]], interval: float) -> None:
        while True:
            await asyncio.sleep(interval * random.uniform(0.75, 1.25))
            try:
                await one_pass()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reaper pass failed: %s: %s", type(exc).__name__, exc)

    async def reap_dead_workers(self) -> int:
        """Ends the running generations of workers whose liveness key is gone and whose
        database heartbeats are older than half the timeout; hands their sessions on."""
        running = await self.store.running_by_worker()
        if not running:
            return 0
        alive = await self.liveness.alive(sorted({worker for _, _, worker in running}))
        stale_before = utcnow() - timedelta(seconds=self.s.worker_heartbeat_timeout / 2)
        ended = 0
        for generation_id, session_id, worker in running:
            if alive[worker]:
                continue
            if await end_interrupted(
                self.s,
                self.store,
                self.log,
                generation_id,
                stale_before=stale_before,
                owner=worker,
                why=f"worker {worker} is gone",
            ):
                ended += 1
                next_id = await self.store.next_runnable(session_id)
                if next_id is not None and self.kick is not None:
                    await self.kick(session_id, next_id)  # only the winner gets here: no dedup needed
        return ended

    async def run_once(self) -> int:
        """One pass; returns how many generations it ended."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.s.worker_heartbeat_timeout)
        ended, sessions = 0, set()
        for generation_id in await self.store.stale_running(cutoff):
            try:
                if await end_interrupted(
                    self.s, self.store, self.log, generation_id, stale_before=cutoff, why="reaper: heartbeat stale"
                ):
                    ended += 1
                    sessions.add((await self.store.get(generation_id)).session_id)
            except Exception as exc:
                log.warning("could not end stale generation %s: %s: %s", generation_id, type(exc).__name__, exc)
        for session_id in sessions:
            runnable = await self.store.next_runnable(session_id)
            if runnable is not None:
                await self._kick(session_id, runnable)
        stuck_before = now - timedelta(seconds=self.s.stuck_queue_after)
        for session_id, generation_id in await self.store.stuck_sessions(stuck_before):
            await self._kick(session_id, generation_id)
        return ended

    async def _kick(self, session_id: str, generation_id: str) -> None:
        if self.kick is None:
            return
        ttl = int(min(self.s.stuck_queue_after, self.s.reaper_interval * 2) * 1000)
        if not await self.liveness.first("kick", session_id, max(ttl, 1000)):
            return  # another process just did it
        log.info("publishing the job of session %s again (generation %s)", session_id, generation_id)
        await self.kick(session_id, generation_id)
