"""Liveness and readiness, and the database-wide gauges a scrape refreshes.

Ready means a message sent now would be accepted and stored: the database answers, and in
the scale-out mode Redis too (a generation is declared in the stream log when it is
accepted). RabbitMQ is not asked: a message is accepted while the broker is down (its job
is published again later), so a broker outage must not take every replica out of the load
balancer. A server going away (SIGTERM) is not ready either."""

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from services import tables
from services.observability import metrics

if TYPE_CHECKING:
    from services.container import Services

PROBE_TIMEOUT = 2.0
_messages = tables.messages
_queued = (
    select(func.count()).select_from(_messages).where(_messages.c.role == "assistant", _messages.c.status == "queued")
)


async def readiness(services: "Services") -> dict[str, str]:
    """Each check accepting depends on in this mode: "up" or the error's type."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {"database": services.db.ping}
    if services.settings.redis_url:
        checks["stream_log"] = services.log.ping
    out: dict[str, str] = {}
    for name, check in checks.items():
        try:
            async with asyncio.timeout(PROBE_TIMEOUT):
                await check()
            out[name] = "up"
        except Exception as exc:
            out[name] = type(exc).__name__
    if services.generations.closing.is_set():
        out["server"] = "going_away"
    return out


def _count_queued(conn: Connection) -> int:
    return int(conn.execute(_queued).scalar_one())


async def refresh_gauges(services: "Services") -> None:
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            metrics.GENERATIONS_QUEUED.set(await services.db.run(_count_queued))
    except Exception:  # a scrape still answers with what it has
        pass


async def refresh_forever(services: "Services", interval: float = 10.0) -> None:
    """For a /metrics on its own port (served by a thread that cannot query the database)."""
    while True:
        await refresh_gauges(services)
        await asyncio.sleep(interval)
