"""Jobs accepted while the broker could not take them, published again as soon as it can.

A message is accepted (stored `queued`) whether or not RabbitMQ is up. When its job cannot be
published, RabbitDispatch hands it to this backlog, whose one task retries with a capped
exponential backoff (BROKER_RETRY_INITIAL doubling up to BROKER_RETRY_MAX) and is woken at
once when the robust connection reports it reconnected. So a broker restart delays answers
by about the time the broker is away, not by the STUCK_QUEUE_AFTER sweep, which stays only
as the safety net for a replica that died holding a backlog.

The backlog is bounded (BROKER_BACKLOG_MAX): past it the oldest job is left to the sweep,
which finds it in the database. A job published twice (the broker took it but its confirm
was lost) is harmless: a worker only starts a session's oldest queued generation, through a
conditional claim."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Publish = Callable[[str, str], Awaitable[None]]


class Backlog:
    def __init__(self, publish: Publish, initial_delay: float, max_delay: float, max_jobs: int):
        self.publish = publish
        self.initial_delay, self.max_delay, self.max_jobs = initial_delay, max_delay, max_jobs
        self.jobs: dict[str, str] = {}  # generation_id -> session_id, in acceptance order
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self.jobs)

    def add(self, session_id: str, generation_id: str) -> None:
        self.jobs[generation_id] = session_id
        while len(self.jobs) > self.max_jobs:
            dropped = next(iter(self.jobs))
            del self.jobs[dropped]
            log.warning("broker backlog full: generation %s is left to the STUCK_QUEUE_AFTER sweep", dropped)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())

    def wake(self, *_args: object) -> None:
        """Retry now (the connection is back); usable as an aio-pika reconnect callback."""
        self._wake.set()

    async def _drain(self) -> None:
        delay = self.initial_delay
        while self.jobs:
            if await self._publish_all():
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), delay)
                delay = self.initial_delay
            except TimeoutError:
                delay = min(delay * 2, self.max_delay)

    async def _publish_all(self) -> bool:
        """Publishes the jobs in order; stops at the first failure. True when all went out."""
        for generation_id, session_id in list(self.jobs.items()):
            try:
                await self.publish(session_id, generation_id)
            except Exception as exc:
                log.debug("backlog: broker still unavailable (%s)", type(exc).__name__)
                return False
            self.jobs.pop(generation_id, None)
            log.info("published the job of generation %s after the broker came back", generation_id)
        return True

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except BaseException:
                pass
        if self.jobs:
            log.warning("%d unpublished jobs are left to the STUCK_QUEUE_AFTER sweep", len(self.jobs))
