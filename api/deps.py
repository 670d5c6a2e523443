"""Shared dependencies of the routers, as Annotated aliases: the services, a database
session, ULID path parameters, the client's address. Who is calling: api/principal.py."""

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Path, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import HTTPConnection

from models.schemas import ULID_PATTERN
from services.api_keys import ApiKeyService
from services.client_address import client_address, parse_proxies
from services.container import Services


# Dependencies are `async def` even when they never await: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hop per request for a dictionary lookup.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_db(services: Annotated[Services, Depends(get_services)]) -> AsyncIterator[AsyncSession]:
    async with services.db.sessionmaker() as session:
        yield session


ServicesDep = Annotated[Services, Depends(get_services)]
# A route's own session. A route that then waits on work opening sessions of its own
# (submit, cancel, a stream) must close it first: holding one pooled connection while
# waiting for another deadlocks the pool under load (tests/test_capacity.py).
DbDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
# The one path type of every id (sessions, generations, API keys, users): a ULID, else 422.
UlidPath = Annotated[str, Path(pattern=ULID_PATTERN, description="a ULID")]


def api_keys_of(services: Services) -> ApiKeyService:
    """The container's API key service: optional on Services for containers assembled by
    hand, always built by services.container.build, which the app runs on."""
    if services.api_keys is None:
        raise RuntimeError("this Services container has no API key service")
    return services.api_keys


def client_of(conn: HTTPConnection, services: Services) -> str:
    """The client's address for per-address limits (X-Forwarded-For only from TRUSTED_PROXIES)."""
    return client_address(
        conn.client.host if conn.client else None,
        ",".join(conn.headers.getlist("x-forwarded-for")),
        parse_proxies(services.settings.trusted_proxies),
    )
