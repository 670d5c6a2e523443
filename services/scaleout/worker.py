"""The worker process of the scale-out mode (`python -m worker`): consumes generation jobs
from RabbitMQ, runs them with the same GenerationRunner as the embedded mode, and appends
their frames to the Redis stream log. It serves no client.

Per-session order across workers
--------------------------------
A job names a session and a generation. The worker that takes it drains the *session*: it
runs the session's oldest active generation if that one is still queued
(`GenerationStore.next_runnable`), again and again: the drain loop LocalDispatch uses in one
process (services/generations/drain.py), with a turn that holds the session's lease.
Two guards keep one generation per session at a time, in submission order:

- the database: a generation is only started when every earlier generation of its session
  is finished, and the claim is a conditional UPDATE (queued -> running), so two workers
  racing for one generation have one winner. This alone guarantees order.
- a lease per session in Redis (`SET NX PX`, value = worker id, renewed by the heartbeat,
  released with compare-and-delete), so that normally one worker drains a session and the
  others do not even query. A worker that cannot get the lease acks its job and leaves it
  to the holder. The race: the holder may be finishing ("nothing queued") just as the new
  generation is stored. That is covered because the holder, after releasing the lease,
  looks for queued generations once more: the new generation was committed before its
  job was published, so before the other worker tried the lease, so before the holder
  released it, so the holder's second look sees it (and takes the lease again, or, if a
  third worker took it meanwhile, that worker's drain sees it). Within one process a second
  job for a session being drained sets a flag the drain checks before it ends.
- a holder keeps its own job unacked for the whole drain, so if it dies the job is
  redelivered and another worker drains the session; a lease whose holder's liveness key
  has expired can be taken over at once.

The worker builds only what it uses (services/container.py `Core`: database, providers, stream
log, store, usage; one runner; the dispatch, reaper and leases): no token config or secret key,
no session service, login limiter or API keys.

Crashes, shutdown: see services/scaleout/recovery.py and docs/architecture.md."""

import asyncio
import json
import logging
import os
import secrets
import socket
from typing import Any

from config import Settings
from services.container import build_core, build_scaleout
from services.errors import NotFound
from services.generations.drain import DrainLoop
from services.observability import tracing
from services.scaleout.leased_drain import LeasedTurn
from services.scaleout.leases import Leases
from services.scaleout.rabbit_dispatch import declare_topology
from services.scaleout.recovery import end_interrupted
from services.streaming.redis_log import RedisStreamLog

log = logging.getLogger(__name__)


def default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(3)}"


class Worker:
    def __init__(self, settings: Settings, worker_id: str | None = None):
        if not settings.rabbitmq_url or not settings.redis_url:
            raise ValueError("the worker needs RABBITMQ_URL and REDIS_URL")
        self.s = settings
        self.worker_id = worker_id or default_worker_id()
        self.core = build_core(settings)
        self.dispatch, self.reaper = build_scaleout(self.core)
        self.store = self.core.store
        assert isinstance(self.core.log, RedisStreamLog)  # build_scaleout refuses any other
        self.log: RedisStreamLog = self.core.log
        self.leases = Leases(
            self.log.redis, self.log.keys, self.worker_id, int(settings.worker_heartbeat_timeout * 1000)
        )
        self.loop = DrainLoop(self.store, self.core.runner(self.worker_id))
        self.controls = self.loop.controls
        self._jobs: set[asyncio.Task[None]] = set()
        self._draining: set[str] = set()
        self._hurry = asyncio.Event()
        self._channel: Any = None
        self._queue: Any = None
        self._consumer_tag: str | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    # lifecycle
    async def start(self) -> None:
        await self.core.db.migrate()
        await self.dispatch.start()  # the publisher connection; consuming shares it
        await self.reaper.start()
        while self.dispatch.connection is None:  # the broker is down: wait for it
            await asyncio.sleep(0.5)
        await self.leases.beat()
        self._heartbeat = asyncio.create_task(self.leases.heartbeat_loop())
        self._channel = await self.dispatch.connection.channel()
        await self._channel.set_qos(prefetch_count=self.s.rabbitmq_prefetch)
        self._queue, exchange = await declare_topology(self._channel, self.s)
        cancels = await self._channel.declare_queue(
            f"{self.s.rabbitmq_queue}.cancel.{self.worker_id}", exclusive=True, auto_delete=True
        )
        await cancels.bind(exchange)
        await cancels.consume(self._on_cancel, no_ack=True)
        self._consumer_tag = await self._queue.consume(self._on_job)
        log.info(
            "worker %s consuming %s (prefetch %d)", self.worker_id, self.s.rabbitmq_queue, self.s.rabbitmq_prefetch
        )

    def hurry(self) -> None:
        """A second signal: end running generations now instead of after the grace period."""
        self._hurry.set()

    async def shutdown(self) -> None:
        """Stop consuming; let running generations finish within WORKER_SHUTDOWN_GRACE, then
        end them interrupted; jobs not started go back to the queue (nack + requeue)."""
        self.loop.closing = True
        if self._queue is not None and self._consumer_tag is not None:
            try:
                await self._queue.cancel(self._consumer_tag)
            except Exception:
                pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.s.worker_shutdown_grace
        while self._jobs and self.controls and not self._hurry.is_set() and loop.time() < deadline:
            await asyncio.wait(set(self._jobs), timeout=min(0.2, max(0.0, deadline - loop.time())))
        self.loop.stop_all("shutdown")
        if self._jobs:
            await asyncio.wait(set(self._jobs), timeout=15)
        for task in list(self._jobs):
            task.cancel()
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        try:
            await self.leases.release_all()
        except Exception:
            pass
        if self._channel is not None:
            try:
                await self._channel.close()
            except Exception:
                pass
        await self.reaper.stop()
        await self.dispatch.aclose()
        await self.core.aclose()
        log.info("worker %s stopped", self.worker_id)

    # jobs
    async def _on_job(self, message: Any) -> None:
        task = asyncio.create_task(self._handle(message))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)

    async def _on_cancel(self, message: Any) -> None:
        self.loop.cancel(message.body.decode(errors="replace"))

    async def _handle(self, message: Any) -> None:
        try:
            body = json.loads(message.body)
            session_id, generation_id = str(body["session_id"]), str(body["generation_id"])
            tracing.adopt(generation_id, body.get("trace"))
        except (ValueError, KeyError, TypeError, AttributeError):
            log.error("malformed job dropped: %r", message.body[:200])
            await _settle(message, reject=True)
            return
        requeue = True
        try:
            if self.loop.closing:
                return
            if message.redelivered:
                await self._recover(generation_id)
            requeue = await self._drain(session_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("job for session %s failed; requeued", session_id)
            await asyncio.sleep(1.0)  # a broken DB must not spin jobs through the queue
        finally:
            await _settle(message, requeue=requeue)

    async def _recover(self, generation_id: str) -> None:
        """A redelivered job: its previous consumer's channel closed. If its generation is
        still running there, the owner died (or lost the broker but lives on): once the
        owner's liveness key is gone, end the generation interrupted, never run it again."""
        try:
            row = await self.store.get(generation_id)
        except NotFound:
            return
        if row.status != "running" or generation_id in self.controls:
            return
        owner = row.worker_id
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.s.worker_heartbeat_timeout + 1
        while not self.loop.closing:
            if owner is None or (owner != self.worker_id and not await self.leases.is_alive(owner)):
                await end_interrupted(
                    self.s,
                    self.store,
                    self.log,
                    generation_id,
                    owner=owner,
                    why=f"redelivered job; worker {owner} is gone",
                )
                return
            if loop.time() >= deadline:
                return  # the owner lives (it lost the broker, not its work); the reaper watches it
            await asyncio.sleep(0.25)
            if (await self.store.get(generation_id)).status != "running":
                return

    async def _drain(self, session_id: str) -> bool:
        """Runs the session's queued generations in order; True to requeue the job (shutdown
        with work left), False to ack it."""
        if session_id in self._draining:
            self.loop.wake(session_id)  # that drain looks again before it ends
            return False
        self._draining.add(session_id)
        try:
            turn = LeasedTurn(self.store, session_id, self.leases, self.loop)
            if not await self.leases.acquire(session_id) and not await turn.await_lease(
                self.s.worker_heartbeat_timeout
            ):
                return False  # the holder drains it (see the module docstring for the race)
            return await self.loop.drain(turn)
        finally:
            if session_id in self.leases.held:
                try:
                    await self.leases.release(session_id)
                except Exception:
                    pass  # expires by itself
            self._draining.discard(session_id)
            self.loop.forget(session_id)


async def _settle(message: Any, requeue: bool = False, reject: bool = False) -> None:
    try:
        if reject:
            await message.reject(requeue=False)
        elif requeue:
            await message.nack(requeue=True)
        else:
            await message.ack()
    except Exception as exc:  # channel gone: the broker redelivers it, which is handled
        log.warning("could not settle job: %s", type(exc).__name__)
