"""The two implementations of the generation store's interface (store_protocol.py), and the
factory that picks one by the database.

SqlGenerationStore runs every statement on SQLAlchemy Core (store_sql.py, store_sql_rows.py,
store_tree.py) through `Database.run`: PostgreSQL. SqliteGenerationStore runs every one on
SQLite's one thread and held connection, also through `Database.run`, the per-message ones
on the sqlite3 cursor (store_sqlite.py), the rarer ones on Core over the same connection."""

import asyncio
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.util import await_only

from services.db import Database
from services.errors import NotFound, StorageConflict
from services.generations import store_sql, store_sql_rows, store_sqlite
from services.generations.store_protocol import ActiveCheck, GenerationStore, Seal
from services.generations.store_rules import final_values, first_words_title
from services.generations.store_sql import CreateTurn
from services.generations.store_tree import create_branch
from services.generations.store_types import (
    ACTIVE,
    Branch,
    ChatRef,
    GenerationRow,
    Interrupted,
    Job,
    JSONDict,
    NewCall,
    Turn,
)

T = TypeVar("T")
__all__ = ["ACTIVE", "GenerationStore", "SqlGenerationStore", "SqliteGenerationStore", "build_store"]


def build_store(db: Database, max_history: int, max_queued: int, seq_reserve: int = 0) -> GenerationStore:
    """The store for this database: SQLite's on its thread, or Core for PostgreSQL."""
    kind = SqliteGenerationStore if db.is_sqlite else SqlGenerationStore
    return kind(db, max_history=max_history, max_queued=max_queued, seq_reserve=seq_reserve)


def _checked(
    conn: Connection,
    check: ActiveCheck,
    user_id: str,
    active: Callable[[Connection, str], list[str]],
    create: CreateTurn,
    *args: Any,
) -> Turn | None:
    """`create(conn, *args)` after the caller's check of the user's active answers, in one
    transaction."""
    check(active(conn, user_id))
    return create(conn, *args)


class SqlGenerationStore:
    """The store on SQLAlchemy Core (PostgreSQL; the session row is locked for a send)."""

    _duplicate: tuple[type[Exception], ...] = (IntegrityError,)

    def __init__(self, db: Database, *, max_history: int, max_queued: int, seq_reserve: int = 0):
        self.db = db
        self.max_history = max_history
        self.max_queued = max_queued
        self.seq_reserve = seq_reserve

    # The statements a send and a running answer make: SqliteGenerationStore's differ.
    _create_turn: CreateTurn = staticmethod(store_sql.create_turn)
    _user_active = staticmethod(store_sql.user_active_sessions)
    _claim = staticmethod(store_sql.claim)
    _flush = staticmethod(store_sql_rows.flush)
    _finalize = staticmethod(store_sql_rows.finalize)
    _next_runnable = staticmethod(store_sql_rows.next_runnable)

    def _waiter(self) -> Callable[[Awaitable[T]], T]:
        """How a unit of work awaits `seal`: on the event loop, through SQLAlchemy's greenlet."""
        return await_only

    async def create_turn(
        self, chat: ChatRef, text: str, client_msg_id: str | None = None, *, claim_for: str | None = None
    ) -> Turn:
        # The caller's `chat` may be stale (a socket loads it once): the title is only a hint
        # of whether to try setting one.
        title = first_words_title(text) if not chat.title else None
        turn = await self._create(None, chat.id, chat.model_name, text, client_msg_id, title, claim_for, None)
        assert turn is not None  # no owner: always stored
        return turn

    async def create_owned_turn(
        self,
        user_id: str,
        session_id: str,
        text: str,
        client_msg_id: str | None = None,
        *,
        claim_for: str | None = None,
        check: ActiveCheck | None = None,
    ) -> Turn:
        title = first_words_title(text)
        turn = await self._create(check, session_id, None, text, client_msg_id, title, claim_for, user_id)
        if turn is None:
            raise NotFound(f"session {session_id} not found", code="session_not_found")
        return turn

    async def _create(
        self,
        check: ActiveCheck | None,
        session_id: str,
        model: str | None,
        text: str,
        client_msg_id: str | None,
        title: str | None,
        claim_for: str | None,
        owner: str | None,
    ) -> Turn | None:
        args = (session_id, model, text, client_msg_id, title, self.max_queued, claim_for, self.max_history, owner)
        try:
            if check is None:
                return await self.db.run(self._create_turn, *args, self.seq_reserve)
            assert owner is not None
            return await self.db.run(
                _checked, check, owner, self._user_active, self._create_turn, *args, self.seq_reserve
            )
        # The same client_msg_id sent twice at once: the first one won.
        except self._duplicate as error:
            existing = await self.db.run(store_sql.by_client_msg, session_id, client_msg_id) if client_msg_id else None
            if existing is None:
                raise StorageConflict("the message could not be stored; send it again") from error
            return existing

    async def create_branch(self, branch: Branch, *, claim_for: str | None = None) -> Turn:
        return await self.db.run(create_branch, branch, self.max_queued, claim_for, self.max_history, self.seq_reserve)

    async def create_call(self, call: NewCall, *, claim_for: str | None = None) -> Turn:
        return await self.db.run(
            store_sql.create_call,
            call,
            self._create_turn,
            claim_for,
            self.max_queued,
            self.max_history,
            self.seq_reserve,
        )

    async def get(self, generation_id: str, user_id: str | None = None) -> GenerationRow:
        row = await self.db.run(store_sql_rows.get, generation_id, user_id)
        if row is None:
            raise NotFound(f"generation {generation_id} not found", code="generation_not_found")
        return row

    async def latest(self, session_id: str) -> GenerationRow | None:
        return await self.db.run(store_sql_rows.latest, session_id)

    async def active_in_session(self, session_id: str) -> list[str]:
        return await self.db.run(store_sql_rows.active_in_session, session_id)

    async def claim(self, generation_id: str, worker_id: str) -> Job | None:
        return await self.db.run(self._claim, generation_id, worker_id, self.max_history, self.seq_reserve)

    async def flush(self, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
        await self.db.run(self._flush, changed, unchanged)

    async def reserve(self, generation_id: str, bound: int) -> None:
        await self.db.run(store_sql_rows.reserve, generation_id, bound)

    async def finalize(
        self,
        generation_id: str,
        *,
        content: str | None,
        last_seq: int,
        status: str,
        finish_reason: str,
        usage: JSONDict | None,
        error: JSONDict | None = None,
        model: str | None = None,
        only_if: tuple[str, ...] = ACTIVE,
    ) -> bool:
        values = final_values(
            content=content,
            last_seq=last_seq,
            status=status,
            finish_reason=finish_reason,
            usage=usage,
            error=error,
            model=model,
        )
        return await self.db.run(self._finalize, generation_id, values, only_if)

    async def next_runnable(self, session_id: str) -> str | None:
        return await self.db.run(self._next_runnable, session_id)

    async def stale_running(self, before: datetime, limit: int = 100) -> list[str]:
        return await self.db.run(store_sql_rows.stale_running, before, limit)

    async def running_by_worker(self, limit: int = 1000) -> list[tuple[str, str, str]]:
        return await self.db.run(store_sql_rows.running_by_worker, limit)

    async def stuck_sessions(self, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        return await self.db.run(store_sql_rows.stuck_sessions, before, limit)

    async def end_interrupted(
        self,
        generation_id: str,
        *,
        error: JSONDict,
        seal: Seal,
        stale_before: datetime | None = None,
        owner: str | None = None,
    ) -> Interrupted | None:
        return await self.db.run(
            store_sql_rows.end_interrupted, generation_id, error, seal, self._waiter(), stale_before, owner
        )


class SqliteGenerationStore(SqlGenerationStore):
    """The store on SQLite: every statement on its one thread (`Database.run`), the ones of
    every message and every flush on the sqlite3 cursor, whose errors are the driver's own."""

    _duplicate = (IntegrityError, sqlite3.IntegrityError)
    _create_turn = staticmethod(store_sqlite.create_turn)
    _user_active = staticmethod(store_sqlite.user_active_sessions)
    _claim = staticmethod(store_sqlite.claim)
    _flush = staticmethod(store_sqlite.flush)
    _finalize = staticmethod(store_sqlite.finalize)
    _next_runnable = staticmethod(store_sqlite.next_runnable)

    def _waiter(self) -> Callable[[Awaitable[T]], T]:
        """`seal` runs on the event loop while the thread waits with the write lock held:
        one party ends the answer, and nothing else writes before its text is in."""
        loop = asyncio.get_running_loop()

        def wait(step: Awaitable[T]) -> T:
            return asyncio.run_coroutine_threadsafe(cast(Coroutine[Any, Any, T], step), loop).result()

        return wait
