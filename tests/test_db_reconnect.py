"""The database ending a connection in the middle of a unit of work (a failover, an
administrator's `pg_terminate_backend`, an idle cut by a proxy): `Database.run` runs the unit
once more on a fresh connection, because nothing of it was committed; any other database
error is raised as it is, and a second loss in a row is raised as the domain error
DatabaseUnavailable, which reaches the client as a 503 `database_unavailable`, never a 500."""

import sqlite3

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from api.errors import install
from services.db import Database
from services.errors import DatabaseUnavailable
from tests.scaleout_support import create_database, drop_database, unique
from tests.support import make_settings

scaleout = pytest.mark.scaleout  # the local PostgreSQL server


@pytest.fixture
async def pg(tmp_path):
    name = unique("t_reconnect").lower()
    url = await create_database(name)
    db = Database(make_settings(tmp_path, database_url=url))
    try:
        async with db.engine.begin() as conn:
            await conn.execute(text("CREATE TABLE notes (body text)"))
        yield db
    finally:
        await db.dispose()
        await drop_database(name)


def writer(calls: list, lose_first: int):
    """A unit of work that inserts a row, its connection killed by the server on the first
    `lose_first` calls, after the insert and before the commit."""

    def unit(conn) -> int:
        calls.append(1)
        conn.execute(text("INSERT INTO notes VALUES ('kept')"))
        if len(calls) <= lose_first:
            conn.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))
        return len(calls)

    return unit


async def count(db: Database) -> int:
    return await db.run(lambda conn: conn.execute(text("SELECT count(*) FROM notes")).scalar_one())


@scaleout
async def test_a_connection_lost_before_commit_is_run_again(pg):
    calls: list = []
    assert await pg.run(writer(calls, lose_first=1)) == 2
    assert await count(pg) == 1  # the first attempt's insert died with its connection


@scaleout
async def test_two_losses_in_a_row_are_raised(pg):
    calls: list = []
    with pytest.raises(DatabaseUnavailable) as raised:
        await pg.run(writer(calls, lose_first=2))
    assert raised.value.code == "database_unavailable"
    assert isinstance(raised.value.__cause__, DBAPIError) and raised.value.__cause__.connection_invalidated
    assert len(calls) == 2
    assert await count(pg) == 0


@scaleout
async def test_other_database_errors_are_not_retried(pg):
    calls: list = []

    def broken(conn):
        calls.append(1)
        conn.execute(text("SELECT * FROM no_such_table"))

    with pytest.raises(DBAPIError) as raised:
        await pg.run(broken)
    assert not raised.value.connection_invalidated and len(calls) == 1


async def test_a_lost_connection_reaching_the_client_is_503_not_500():
    app = FastAPI()
    install(app)

    @app.get("/lost")
    async def lost():
        lost = DBAPIError("SELECT 1", {}, ConnectionResetError("terminated"), connection_invalidated=True)
        raise DatabaseUnavailable("The database is unavailable for a moment; retry shortly.") from lost

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        r = await client.get("/lost")
    assert r.status_code == 503 and r.headers["Retry-After"] == "1"
    assert r.json()["code"] == "database_unavailable"


async def test_sqlite_unable_to_write_is_unavailable_and_other_errors_are_not(tmp_path):
    db = Database(make_settings(tmp_path))
    try:

        def locked(conn):
            raise sqlite3.OperationalError("database is locked")

        with pytest.raises(DatabaseUnavailable) as raised:
            await db.run(locked)
        assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
        wrapped = OperationalError("INSERT", {}, sqlite3.OperationalError("disk I/O error"))
        with pytest.raises(DatabaseUnavailable):  # the same through SQLAlchemy's wrapping

            def io_error(conn):
                raise wrapped

            await db.run(io_error)
        with pytest.raises(OperationalError):  # a wrong statement stays a bug, not an outage
            await db.run(lambda conn: conn.execute(text("SELECT * FROM no_such_table")))
    finally:
        await db.dispose()
