"""The reaper runs in every scale-out process (API replicas and workers), every
REAPER_INTERVAL seconds (with jitter, so processes spread out):

1. A `running` generation whose heartbeat is older than WORKER_HEARTBEAT_TIMEOUT lost its
   worker: it is ended `interrupted` (services/scaleout/recovery.py), so readers never hang.
   Its session's queued generations are then handed to a worker again (a job is published).
2. A session whose oldest queued generation is older than STUCK_QUEUE_AFTER, with nothing
   running, has nobody draining it (e.g. a replica died between storing the message and
   publishing its job): its job is published again. Duplicate jobs are harmless: a worker
   only ever starts a session's oldest queued generation, through a conditional claim.

Several reapers racing on one generation are safe: the conditional UPDATE has one winner.
Re-publishing is deduplicated across processes with a short Redis key per session."""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import timedelta

from config import Settings
from models.db import utcnow
from services.generations.store import GenerationStore
from services.scaleout.recovery import end_interrupted
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)


class Reaper:
    def __init__(self, settings: Settings, store: GenerationStore, stream_log: StreamLog,
                 kick: Callable[[str, str], Awaitable[None]] | None = None):
        self.s = settings
        self.store = store
        self.log = stream_log
        self.kick = kick
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass
            self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.reaper_interval * random.uniform(0.75, 1.25))
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reaper pass failed: %s: %s", type(exc).__name__, exc)

    async def run_once(self) -> int:
        """One pass; returns how many generations it ended."""
        now = utcnow()
        cutoff = now - timedelta(seconds=self.s.worker_heartbeat_timeout)
        ended, sessions = 0, set()
        for generation_id in await self.store.stale_running(cutoff):
            try:
                if await end_interrupted(self.s, self.store, self.log, generation_id, stale_before=cutoff,
                                         why="reaper: heartbeat stale"):
                    ended += 1
                    sessions.add((await self.store.get(generation_id)).session_id)
            except Exception as exc:
                log.warning("could not end stale generation %s: %s: %s", generation_id, type(exc).__name__, exc)
        for session_id in sessions:
            generation_id = await self.store.next_runnable(session_id)
            if generation_id is not None:
                await self._kick(session_id, generation_id)
        stuck_before = now - timedelta(seconds=self.s.stuck_queue_after)
        for session_id, generation_id in await self.store.stuck_sessions(stuck_before):
            await self._kick(session_id, generation_id)
        return ended

    async def _kick(self, session_id: str, generation_id: str) -> None:
        if self.kick is None:
            return
        redis = getattr(self.log, "redis", None)
        if redis is not None:
            key = self.log.key("kick", session_id)
            ttl = int(min(self.s.stuck_queue_after, self.s.reaper_interval * 2) * 1000)
            if not await redis.set(key, "1", nx=True, px=max(ttl, 1000)):
                return  # another process just did it
        log.info("publishing the job of session %s again (generation %s)", session_id, generation_id)
        await self.kick(session_id, generation_id)
