"""Database engine, sessions and start-up migrations."""

import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from alembic.config import Config
from sqlalchemy import Connection, Engine, Row, create_engine, event, make_url, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from alembic import command
from config import Settings
from services.errors import DatabaseUnavailable
from services.serial_thread import SerialThread

ROOT = Path(__file__).resolve().parent.parent
MIGRATION_LOCK_ID = 7_420_119  # any constant: serializes replicas migrating one PostgreSQL
T = TypeVar("T")
AnyRow = Row[*tuple[Any, ...]]  # a Core result row, read by column name


def sqlite_driver(conn: Connection) -> sqlite3.Connection:
    """The driver's own connection under `conn`, on SQLite (the sync engine's pysqlite), for
    the hot statements run on its cursor; SQLAlchemy types it as any driver's connection."""
    return cast(sqlite3.Connection, conn.connection.driver_connection)


class Database:
    def __init__(self, settings: Settings):
        url = settings.sqlalchemy_url
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            self.engine: AsyncEngine = create_async_engine(url, connect_args={"timeout": 30})
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            # The generation path's statements (services/generations/store_sql.py) run on one
            # thread with a plain sqlite3 connection: one thread hop per operation instead of
            # one per statement through aiosqlite, and no async adaptation around each.
            self.sync_engine: Engine | None = create_engine(
                make_url(url).set(drivername="sqlite"), connect_args={"timeout": 30, "check_same_thread": False}
            )
            event.listen(self.sync_engine, "connect", _sqlite_pragmas)
            self._thread = SerialThread("sqlite")
            # The thread's one connection, held between calls: a pool checkout and return
            # (with its reset) around every call cost more Python than most of the statements.
            self._held: Connection | None = None
        else:
            self.sync_engine = None
            self.engine = create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        async with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})"))
            await conn.run_sync(_upgrade)

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(connection, *args)` in one transaction, committed when it returns. On SQLite
        a single thread runs them in submission order; on PostgreSQL the async driver does,
        through SQLAlchemy's greenlet bridge. A lost connection (or SQLite unable to write)
        is raised as DatabaseUnavailable, never as the driver's error."""
        if self.sync_engine is not None:
            try:
                return await self._thread.call(self._run_sync, fn, args)
            except (sqlite3.OperationalError, OperationalError) as error:
                if not _sqlite_unavailable(error):
                    raise
                raise DatabaseUnavailable(_UNAVAILABLE) from error
        try:
            return await self._run_async(fn, args)
        except _BeforeCommit as lost:
            # The server ended the connection (a failover, an administrator, an idle cut)
            # before the transaction committed, so nothing of it was stored: run it once
            # more on a fresh connection. A failure during COMMIT itself is never retried,
            # because the transaction may have committed.
            if not lost.error.connection_invalidated:
                raise lost.error from None
            try:
                return await self._run_async(fn, args)
            except _BeforeCommit as again:
                if again.error.connection_invalidated:
                    raise DatabaseUnavailable(_UNAVAILABLE) from again.error
                raise again.error from None

    async def _run_async(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        async with self.engine.connect() as conn:
            try:
                await conn.begin()
                result = await conn.run_sync(fn, *args)
            except DBAPIError as error:
                raise _BeforeCommit(error) from error
            try:
                await conn.commit()
            except DBAPIError as error:  # maybe committed: not retried, but no driver error leaks
                if error.connection_invalidated:
                    raise DatabaseUnavailable(_UNAVAILABLE) from error
                raise
            return result

    def _run_sync(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self.sync_engine is not None  # the thread runs only SQLite's calls
        conn = self._held
        if conn is None or conn.closed:
            conn = self._held = self.sync_engine.connect()
        with conn.begin():  # committed, or rolled back on an exception; an invalidated one reconnects
            return fn(conn, *args)

    def _dispose_sync(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.close()
        if self.sync_engine is not None:
            self.sync_engine.dispose()

    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self.sessionmaker() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.sync_engine is not None:
            await self._thread.call(self._dispose_sync)
            self._thread.stop()


_UNAVAILABLE = "The database is unavailable for a moment; retry shortly."
# SQLite's errors that say the file could not be written now, not that a statement is wrong.
_SQLITE_UNAVAILABLE = ("database is locked", "disk i/o error", "unable to open database")


def _sqlite_unavailable(error: Exception) -> bool:
    orig = error.orig if isinstance(error, DBAPIError) else error
    return isinstance(orig, sqlite3.OperationalError) and str(orig).lower().startswith(_SQLITE_UNAVAILABLE)


class _BeforeCommit(Exception):
    """A database error raised before COMMIT was sent: the transaction did not happen."""

    def __init__(self, error: DBAPIError):
        super().__init__(str(error))
        self.error = error


def _upgrade(connection: Connection) -> None:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "alembic"))
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, "head")


def _sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: object) -> None:
    # WAL lets readers (history, SSE snapshots) proceed while a generation flushes text.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
