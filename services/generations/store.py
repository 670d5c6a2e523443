"""Database side of generations. Every state change is a conditional UPDATE on status,
so a cancel racing a start, or two workers racing one job, have exactly one winner."""

import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Connection, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from models.db import ChatSession, Message, utcnow
from services.db import Database
from services.errors import NotFound
from services.generations import store_sql, store_sqlite
from services.generations.store_sql import ACTIVE, Job, Turn
from services.providers.base import estimate_tokens

__all__ = ["ACTIVE", "GenerationStore", "Interrupted", "Job", "Turn"]


@dataclass
class Interrupted:
    """What `end_interrupted` stored: the text up to chunk `seq`; the done frame is seq + 1."""

    session_id: str
    content: str
    seq: int
    usage: dict
    model: str | None


class GenerationStore:
    def __init__(self, db: Database, max_history: int, max_queued: int, seq_reserve: int = 0):
        self.db = db
        self.seq_reserve = seq_reserve  # chunk seqs a claimed answer may send before its first flush
        self.sessionmaker = db.sessionmaker
        self.max_history = max_history
        self.max_queued = max_queued
        # The per-message statements: on SQLite through the driver's cursor (see store_sqlite).
        self.fast = store_sqlite if db.is_sqlite else store_sql

    async def create_turn(
        self, chat: ChatSession, text: str, client_msg_id: str | None, claim_for: str | None = None
    ) -> Turn:
        """Stores the message and its queued answer. With `claim_for`, an answer with nothing
        ahead of it is claimed in the same transaction (`Turn.job`)."""
        # The caller's `chat` may be stale (a socket loads it once): the title is only a hint
        # of whether to try setting one.
        title = first_words_title(text) if not chat.title else None
        return await self._create(chat.id, chat.model_name, text, client_msg_id, title, claim_for, None)

    async def create_owned_turn(
        self,
        user_id: str,
        session_id: str,
        text: str,
        client_msg_id: str | None,
        claim_for: str | None = None,
        check: Callable[[Connection], None] | None = None,
    ) -> Turn:
        """`create_turn` into a session given by id, if `user_id` owns it (NotFound otherwise),
        checked in the same transaction: a send needs no lookup of its own first. `check(conn)`
        runs first in that transaction (the limits' count): whatever it raises stores nothing."""
        turn = await self._create(
            session_id, None, text, client_msg_id, first_words_title(text), claim_for, user_id, check
        )
        if turn is None:
            raise NotFound(f"session {session_id} not found", code="session_not_found")
        return turn

    async def _create(
        self,
        session_id: str,
        model: str | None,
        text: str,
        client_msg_id: str | None,
        title: str | None,
        claim_for: str | None,
        owner: str | None,
        check: Callable[[Connection], None] | None = None,
    ) -> Turn | None:
        args = (
            session_id,
            model,
            text,
            client_msg_id,
            title,
            self.max_queued,
            claim_for,
            self.max_history,
            owner,
            self.seq_reserve,
        )
        try:
            create = self.fast.create_turn if check is None else partial(_checked, check, self.fast.create_turn)
            return await self.db.run(create, *args)
        # The same client_msg_id sent twice at once: the first one won. (sqlite3's own error:
        # store_sqlite runs on the driver's cursor, outside SQLAlchemy's exception wrapping.)
        except (IntegrityError, sqlite3.IntegrityError):
            existing = await self.db.run(store_sql.by_client_msg, session_id, client_msg_id) if client_msg_id else None
            if existing is None:
                raise
            return existing

    async def get(self, generation_id: str, user_id: str | None = None):
        """The generation's row (a read-only record with the `messages` columns)."""
        row = await self.db.run(store_sql.get, generation_id, user_id)
        if row is None:
            raise NotFound(f"generation {generation_id} not found", code="generation_not_found")
        return row

    async def latest(self, session_id: str) -> Message | None:
        async with self.sessionmaker() as db:
            return await db.scalar(
                select(Message)
                .where(Message.session_id == session_id, Message.role == "assistant")
                .order_by(Message.pk.desc())
                .limit(1)
            )

    async def claim(self, generation_id: str, worker_id: str) -> Job | None:
        return await self.db.run(self.fast.claim, generation_id, worker_id, self.max_history, self.seq_reserve)

    async def flush(self, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
        """(id, text, seq, reserved bound) per answer with new text; ids of the others."""
        await self.db.run(self.fast.flush, changed, unchanged)

    async def reserve(self, generation_id: str, bound: int) -> None:
        await self.db.run(store_sql.reserve, generation_id, bound)

    async def finalize(
        self,
        generation_id: str,
        *,
        content: str | None,
        last_seq: int,
        status: str,
        finish_reason: str,
        usage: dict | None,
        error: dict | None = None,
        model: str | None = None,
        only_if: tuple[str, ...] = ACTIVE,
    ) -> bool:
        values = dict(
            status=status,
            finish_reason=finish_reason,
            last_seq=last_seq,
            usage=usage,
            error=error,
            finished_at=utcnow(),
        )
        if content is not None:
            values["content"] = content
        if model is not None:
            values["model"] = model
        return await self.db.run(self.fast.finalize, generation_id, values, only_if)

    async def active_in_session(self, session_id: str) -> list[str]:
        async with self.sessionmaker() as db:
            return list(
                (
                    await db.scalars(
                        select(Message.id)
                        .where(
                            Message.session_id == session_id, Message.role == "assistant", Message.status.in_(ACTIVE)
                        )
                        .order_by(Message.pk)
                    )
                ).all()
            )

    # Scale-out (services/scaleout): per-session order across workers, and ending the
    # generations of dead workers. Unused by the embedded mode.

    async def next_runnable(self, session_id: str) -> str | None:
        """The session's oldest active generation if it is still queued; None when nothing is
        queued or one is running. Draining with this keeps a session to one generation at a
        time, in order, whichever drainer or worker asks."""
        return await self.db.run(self.fast.next_runnable, session_id)

    async def stale_running(self, before: datetime, limit: int = 100) -> list[str]:
        """Running generations whose last heartbeat is older than `before`."""
        return await self.db.run(store_sql.stale_running, before, limit)

    async def running_by_worker(self, limit: int = 1000) -> list[tuple[str, str, str]]:
        """(generation, session, worker id) of running generations."""
        return await self.db.run(store_sql.running_by_worker, limit)

    async def stuck_sessions(self, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(session, oldest queued generation) for sessions with a generation queued since
        before `before` and none running: nobody is draining them."""
        running = select(Message.session_id).where(Message.role == "assistant", Message.status == "running")
        async with self.sessionmaker() as db:
            rows = (
                await db.execute(
                    select(Message.session_id, func.min(Message.pk))
                    .where(
                        Message.role == "assistant",
                        Message.status == "queued",
                        Message.created_at < before,
                        Message.session_id.not_in(running),
                    )
                    .group_by(Message.session_id)
                    .limit(limit)
                )
            ).all()
            if not rows:
                return []
            ids = dict(
                (await db.execute(select(Message.pk, Message.id).where(Message.pk.in_([pk for _, pk in rows])))).all()
            )
        return [(session_id, ids[pk]) for session_id, pk in rows]

    async def end_interrupted(
        self,
        generation_id: str,
        *,
        error: dict,
        seal: Callable[[], Awaitable[tuple[str, int] | None]],
        stale_before: datetime | None = None,
        owner: str | None = None,
    ) -> Interrupted | None:
        """running -> failed / interrupted, by exactly one party: the conditional UPDATE
        (still running; heartbeat older than `stale_before`; run by `owner`) holds the row
        until commit. Only the winner calls `seal`, which stops the old producer and returns
        the stream log's (content, chunk seq); that replaces the stored text when present
        (the log is ahead of the last flush), else the stored text stands."""
        conditions = [Message.id == generation_id, Message.role == "assistant", Message.status == "running"]
        if stale_before is not None:
            conditions.append(or_(Message.heartbeat_at < stale_before, Message.heartbeat_at.is_(None)))
        if owner is not None:
            conditions.append(Message.worker_id == owner)
        async with self.sessionmaker() as db, db.begin():
            row = (
                await db.execute(
                    update(Message)
                    .where(*conditions)
                    .values(
                        status="failed",
                        finish_reason="interrupted",
                        error=error,
                        finished_at=utcnow(),
                    )
                    .returning(
                        Message.session_id, Message.content, Message.last_seq, Message.model, Message.seq_reserved
                    )
                )
            ).first()
            if row is None:
                return None
            # Without the log, chunks up to the reservation may have been sent: the stored
            # text is given a seq above them, so readers get it as a snapshot.
            content, seq = row.content, max(row.last_seq, row.seq_reserved + 1)
            snap = await seal()
            if snap is not None:
                content, seq = snap
            usage = {"prompt_tokens": 0, "completion_tokens": estimate_tokens(content)}
            await db.execute(
                update(Message)
                .where(Message.id == generation_id)
                .values(content=content, last_seq=seq + 1, usage=usage)
            )
        return Interrupted(row.session_id, content, seq, usage, row.model)


def first_words_title(text: str) -> str:
    """A chat's title before anyone names it: its first message's first words (services/titles.py
    replaces only this one, never a title the user set)."""
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")


def _checked(
    check: Callable[[Connection], None], create: Callable[..., Turn | None], conn: Connection, *args: Any
) -> Turn | None:
    """`create(conn, *args)` after the caller's check, in one transaction."""
    check(conn)
    return create(conn, *args)
