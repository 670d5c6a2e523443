"""Shared dependencies of the routers, as Annotated aliases."""

from typing import Annotated

from fastapi import Depends, Path
from starlette.requests import HTTPConnection
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from auth.dependencies import get_current_user, get_db, get_services, get_token_subject
from models.schemas import ULID_PATTERN
from services.client_address import client_address, parse_proxies
from services.container import Services

ServicesDep = Annotated[Services, Depends(get_services)]
# A route's own session. A route that then waits on work opening sessions of its own
# (submit, cancel, a stream) must close it first: holding one pooled connection while
# waiting for another deadlocks the pool under load (tests/test_capacity.py).
DbDep = Annotated[AsyncSession, Depends(get_db, scope="function")]
CurrentUser = Annotated[Row, Depends(get_current_user)]  # .id, .username
TokenSubject = Annotated[str, Depends(get_token_subject)]  # a valid token's user id, not looked up
SessionIdPath = Annotated[str, Path(pattern=ULID_PATTERN, description="a ULID")]
GenerationIdPath = Annotated[str, Path(pattern=ULID_PATTERN, description="a ULID")]


def client_of(conn: HTTPConnection, services: Services) -> str:
    """The client's address for per-address limits (X-Forwarded-For only from TRUSTED_PROXIES)."""
    return client_address(conn.client.host if conn.client else None,
                          ",".join(conn.headers.getlist("x-forwarded-for")),
                          parse_proxies(services.settings.trusted_proxies))
