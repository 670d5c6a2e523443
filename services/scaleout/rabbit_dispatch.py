"""Job dispatch through RabbitMQ, for API replicas (and for workers re-publishing jobs).

- submit: a persistent message {session_id, generation_id} to the durable queue
  RABBITMQ_QUEUE, with publisher confirms (the broker has it on disk when submit returns).
  If the broker cannot be reached the generation stays queued in the database and its job
  goes to a backlog (services/scaleout/backlog.py) that publishes it as soon as the broker
  is back: accepting a message never depends on the broker being up.
- cancel: a message on the fanout exchange "<queue>.cancel"; every worker has its own
  exclusive queue bound to it, so the worker that owns the generation gets it whichever
  replica received the cancel, and stops the upstream request.
- connect_robust reconnects (and re-declares) after a broker restart and wakes the backlog;
  ping reports it."""

import asyncio
import json
import logging
import os
import socket

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection

from config import Settings
from services.generations.dispatch import JobDispatch
from services.generations.store_protocol import GenerationStore, Job
from services.observability import tracing
from services.scaleout.backlog import Backlog
from services.streaming.log import StreamLog

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 10.0


def cancel_exchange_name(settings: Settings) -> str:
    return f"{settings.rabbitmq_queue}.cancel"


async def declare_topology(channel: AbstractChannel, settings: Settings) -> tuple[AbstractQueue, AbstractExchange]:
    """The durable job queue and the cancel fanout exchange (same arguments everywhere)."""
    queue = await channel.declare_queue(settings.rabbitmq_queue, durable=True)
    exchange = await channel.declare_exchange(
        cancel_exchange_name(settings), aio_pika.ExchangeType.FANOUT, durable=True
    )
    return queue, exchange


def job_body(session_id: str, generation_id: str, trace: tracing.Carrier | None = None) -> bytes:
    """The job; `trace` is the W3C trace context of the request that queued it (tracing on)."""
    body: dict[str, str | tracing.Carrier] = {"session_id": session_id, "generation_id": generation_id}
    if trace:
        body["trace"] = trace
    return json.dumps(body).encode()


class RabbitDispatch(JobDispatch):
    runs_locally = False

    def __init__(self, settings: Settings, store: GenerationStore, stream_log: StreamLog):
        if not settings.redis_url:
            raise ValueError("RABBITMQ_URL needs REDIS_URL too: workers hand frames to API replicas through Redis")
        self.s = settings
        self.store = store
        self.log = stream_log
        self.connection: AbstractRobustConnection | None = None
        self.channel: AbstractChannel | None = None
        self.cancel_exchange: AbstractExchange | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._closed = False
        self.backlog = Backlog(
            self.publish_job, settings.broker_retry_initial, settings.broker_retry_max, settings.broker_backlog_max
        )

    async def start(self) -> None:
        try:
            await self._connect()
        except Exception as exc:  # come up degraded; /health shows the broker down
            log.warning("RabbitMQ unreachable at start (%s); retrying in the background", type(exc).__name__)
            self._connecting = asyncio.create_task(self._connect_forever())

    async def _connect(self) -> None:
        name = f"{socket.gethostname()}:{os.getpid()}"
        connection = await aio_pika.connect_robust(
            self.s.rabbitmq_url, client_properties={"connection_name": name}, reconnect_interval=self.s.broker_retry_max
        )
        connection.reconnect_callbacks.add(self.backlog.wake)
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            _, self.cancel_exchange = await declare_topology(channel, self.s)
        except BaseException:
            await connection.close()
            raise
        self.connection, self.channel = connection, channel
        self.backlog.wake()

    async def _connect_forever(self) -> None:
        delay = self.s.broker_retry_initial
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self._connect()
                log.info("connected to RabbitMQ")
                return
            except Exception:
                delay = min(delay * 2, self.s.broker_retry_max)

    async def publish_job(self, session_id: str, generation_id: str) -> None:
        """Raises if the broker did not confirm the message."""
        if self.channel is None or self.channel.is_closed:  # fail fast while it reconnects
            raise ConnectionError("not connected to RabbitMQ")
        body = job_body(session_id, generation_id, tracing.carrier(generation_id))
        message = aio_pika.Message(
            body,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=generation_id,
        )
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await self.channel.default_exchange.publish(message, routing_key=self.s.rabbitmq_queue, mandatory=True)

    async def submit(self, session_id: str, generation_id: str, job: Job | None = None) -> None:
        if len(self.backlog):  # keep the order of acceptance behind the jobs already waiting
            self.backlog.add(session_id, generation_id)
            return
        try:
            await self.publish_job(session_id, generation_id)
        except Exception as exc:
            log.warning(
                "could not publish the job of generation %s (%s: %s); it stays queued and is "
                "published when the broker is back",
                generation_id,
                type(exc).__name__,
                exc,
            )
            self.backlog.add(session_id, generation_id)

    async def cancel(self, generation_id: str) -> None:
        try:
            if self.cancel_exchange is None:
                raise ConnectionError("not connected to RabbitMQ")
            async with asyncio.timeout(PUBLISH_TIMEOUT):
                await self.cancel_exchange.publish(aio_pika.Message(generation_id.encode()), routing_key="")
        except Exception as exc:  # the caller reports the generation's state as it stands
            log.warning("could not broadcast the cancel of %s (%s)", generation_id, type(exc).__name__)

    async def ping(self) -> None:
        if self.connection is None or self.connection.is_closed or self.channel is None or self.channel.is_closed:
            raise ConnectionError("RabbitMQ unreachable")

    async def shutdown(self) -> None:
        """Generations run in workers: nothing to end here. The connection stays open until
        `aclose` (Services.stop), so requests still served during a graceful stop publish."""

    async def aclose(self) -> None:
        self._closed = True
        if self._connecting is not None:
            self._connecting.cancel()
        await self.backlog.aclose()
        if self.connection is not None and not self.connection.is_closed:
            try:
                await self.connection.close()
            except Exception:
                pass
