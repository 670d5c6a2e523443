"""The rest of the generation path on SQLAlchemy Core, as functions of a connection run by
`Database.run`: an answer's writes while and after it runs (flush, reserve, finalize, the
interrupted ending), and the reads (one answer, a session's active ones, the scale-out
queries). Rows leave as store_types' frozen dataclasses, never as driver rows."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, RowMapping, func, or_, select, update

from models.db import utcnow
from services.generations import store_statements as q
from services.generations.store_types import GenerationRow, Interrupted, JSONDict
from services.providers.base import estimate_tokens

T = TypeVar("T")
Wait = Callable[[Awaitable[T]], T]  # runs a coroutine to its end from inside a unit of work
m = q.messages


def row_of(mapping: RowMapping | None) -> GenerationRow | None:
    return None if mapping is None else GenerationRow(**mapping)


def flush(conn: Connection, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
    """Every running answer of this process in one transaction: (id, text, seq, reserved
    seq bound) for those with new text, ids only for those whose write is just the heartbeat."""
    now = utcnow()
    if changed:
        conn.execute(q.flush_text, [{"gid": g, "text": t, "seq": s, "now": now, "res": r} for g, t, s, r in changed])
    if unchanged:
        conn.execute(q.heartbeat, [{"gid": g, "now": now} for g in unchanged])


def reserve(conn: Connection, generation_id: str, bound: int) -> None:
    """Raises a running answer's reserved seq bound between flushes (a fast producer)."""
    conn.execute(q.reserve, {"gid": generation_id, "res": bound})


def finalize(conn: Connection, generation_id: str, values: dict[str, Any], only_if: tuple[str, ...]) -> bool:
    statement = update(m).where(m.c.id == generation_id, m.c.status.in_(only_if)).values(**values)
    return conn.execute(statement).rowcount == 1


def get(conn: Connection, generation_id: str, user_id: str | None) -> GenerationRow | None:
    if user_id is None:
        return row_of(conn.execute(q.get, {"gid": generation_id}).mappings().first())
    return row_of(conn.execute(q.get_owned, {"gid": generation_id, "uid": user_id}).mappings().first())


def latest(conn: Connection, session_id: str) -> GenerationRow | None:
    return row_of(conn.execute(q.latest, {"sid": session_id}).mappings().first())


def active_in_session(conn: Connection, session_id: str) -> list[str]:
    return [str(i) for i in conn.execute(q.active_in_session, {"sid": session_id}).scalars()]


def next_runnable(conn: Connection, session_id: str) -> str | None:
    """The session's oldest active generation if it is still queued; None when nothing is
    queued or one is running (or claimed and about to run)."""
    row = conn.execute(q.oldest_active, {"sid": session_id}).first()
    return str(row.id) if row is not None and row.status == "queued" else None


def running_by_worker(conn: Connection, limit: int) -> list[tuple[str, str, str]]:
    """(generation, session, worker) of running generations, for the dead-worker check."""
    rows = conn.execute(
        select(m.c.id, m.c.session_id, m.c.worker_id)
        .where(*q.answers, m.c.status == "running", m.c.worker_id.is_not(None))
        .limit(limit)
    )
    return [(row.id, row.session_id, row.worker_id) for row in rows]


def stale_running(conn: Connection, before: datetime, limit: int) -> list[str]:
    stale = (m.c.heartbeat_at < before) | m.c.heartbeat_at.is_(None)
    query = select(m.c.id).where(*q.answers, m.c.status == "running", stale).order_by(m.c.pk).limit(limit)
    return [str(i) for i in conn.scalars(query)]


def stuck_sessions(conn: Connection, before: datetime, limit: int) -> list[tuple[str, str]]:
    """(session, oldest queued generation) for sessions with a generation queued since
    before `before` and none running."""
    running = select(m.c.session_id).where(*q.answers, m.c.status == "running")
    rows = conn.execute(
        select(m.c.session_id, func.min(m.c.pk))
        .where(*q.answers, m.c.status == "queued", m.c.created_at < before, m.c.session_id.not_in(running))
        .group_by(m.c.session_id)
        .limit(limit)
    ).all()
    if not rows:
        return []
    ids = {pk: gid for pk, gid in conn.execute(select(m.c.pk, m.c.id).where(m.c.pk.in_([pk for _, pk in rows])))}
    return [(session_id, ids[pk]) for session_id, pk in rows]


def end_interrupted(
    conn: Connection,
    generation_id: str,
    error: JSONDict,
    seal: Callable[[], Awaitable[tuple[str, int] | None]],
    wait: Wait[tuple[str, int] | None],
    stale_before: datetime | None,
    owner: str | None,
) -> Interrupted | None:
    """running -> failed / interrupted in one transaction, whose conditional UPDATE holds the
    row until commit: only its winner runs `seal()` (through `wait`, from inside the unit)."""
    conditions = [m.c.id == generation_id, *q.answers, m.c.status == "running"]
    if stale_before is not None:
        conditions.append(or_(m.c.heartbeat_at < stale_before, m.c.heartbeat_at.is_(None)))
    if owner is not None:
        conditions.append(m.c.worker_id == owner)
    ended = dict(status="failed", finish_reason="interrupted", error=error, finished_at=utcnow())
    returned = (m.c.session_id, m.c.content, m.c.last_seq, m.c.model, m.c.seq_reserved)
    row = conn.execute(update(m).where(*conditions).values(**ended).returning(*returned)).first()
    if row is None:
        return None
    # Without the log, chunks up to the reservation may have been sent: the stored text is
    # given a seq above them, so readers get it as a snapshot.
    content, seq = row.content, max(row.last_seq, row.seq_reserved + 1)
    snap = wait(seal())
    if snap is not None:
        content, seq = snap
    usage = {"prompt_tokens": 0, "completion_tokens": estimate_tokens(content)}
    conn.execute(update(m).where(m.c.id == generation_id).values(content=content, last_seq=seq + 1, usage=usage))
    return Interrupted(row.session_id, content, seq, usage, row.model)
