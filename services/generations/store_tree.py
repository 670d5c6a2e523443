"""Branching turns: a regenerated answer, an edited message and its answer, a continuation.

Each is one transaction like a send (store_sql.create_turn): the session is locked (on
PostgreSQL; SQLite has one writer), its owner and the target message checked, the queue
counted, the rows inserted and the session's active leaf moved to the new answer. Rare
next to sends, so plain SQLAlchemy Core on every backend."""

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Connection, bindparam, select

from models.db import new_id, utcnow
from services.errors import Conflict, InvalidInput, NotFound
from services.generations.store_sql import (
    ACTIVE,
    Turn,
    _count_active,
    _insert,
    _lock_chat,
    _owned_chat,
    _set_leaf,
    by_client_msg,
    check_queue,
    claim,
    messages,
)

# The endings an answer can be continued from: cut short, not finished wrong.
CONTINUABLE = frozenset({"length", "timeout", "interrupted", "cancelled"})
_target = select(
    messages.c.id,
    messages.c.role,
    messages.c.status,
    messages.c.finish_reason,
    messages.c.content,
    messages.c.parent_id,
).where(messages.c.id == bindparam("mid"), messages.c.session_id == bindparam("sid"))


@dataclass
class Branch:
    """What to store: `op` is regenerate, edit or continue; `text` the edited message."""

    user_id: str
    session_id: str
    message_id: str
    op: str
    text: str | None = None
    client_msg_id: str | None = None


class _Target(Protocol):  # the row `_target` selects
    id: str
    role: str
    status: str
    finish_reason: str | None
    content: str
    parent_id: str | None


def _answer_parent(op: str, target: _Target) -> str | None:
    """The parent of the new answer, once the target is checked for the operation."""
    if op == "edit":
        if target.role != "user":
            raise InvalidInput("only a message you sent can be edited", code="not_a_user_message")
        return None  # the edited copy, inserted by the caller
    if target.role != "assistant":
        raise InvalidInput("only an answer can be regenerated or continued", code="not_an_answer")
    if target.status in ACTIVE:
        raise Conflict("this answer is still being generated; stop it first", code="generation_active")
    if op == "regenerate":
        return target.parent_id
    if target.finish_reason not in CONTINUABLE or not target.content:
        raise Conflict(
            "only an answer cut short (length, timeout, interruption, cancel) with text can be continued",
            code="not_continuable",
        )
    return target.id


def create_branch(
    conn: Connection, b: Branch, max_queued: int, claim_for: str | None, max_history: int, reserve: int
) -> Turn:
    if conn.dialect.name != "sqlite":
        conn.execute(_lock_chat, {"sid": b.session_id})
    chat = conn.execute(_owned_chat, {"sid": b.session_id, "uid": b.user_id}).first()
    if chat is None:
        raise NotFound(f"session {b.session_id} not found", code="session_not_found")
    target = conn.execute(_target, {"mid": b.message_id, "sid": b.session_id}).first()
    if target is None:
        raise NotFound(f"message {b.message_id} not found", code="message_not_found")
    parent = _answer_parent(b.op, target)
    if b.client_msg_id is not None:
        existing = by_client_msg(conn, b.session_id, b.client_msg_id)
        if existing is not None:
            return existing
    active = int(conn.scalar(_count_active, {"sid": b.session_id}) or 0)
    check_queue(active, max_queued)
    generation_id, now = new_id(), utcnow()
    if b.op == "edit":  # a sibling of the edited message: the old branch stays as it was
        parent = new_id()
        conn.execute(
            _insert,
            dict(
                id=parent,
                session_id=b.session_id,
                role="user",
                content=b.text,
                status="completed",
                client_msg_id=b.client_msg_id,
                generation_id=generation_id,
                created_at=now,
                last_seq=0,
                model=None,
                parent_id=target.parent_id,
            ),
        )
    conn.execute(
        _insert,
        dict(
            id=generation_id,
            session_id=b.session_id,
            role="assistant",
            content="",
            status="queued",
            client_msg_id=None,
            generation_id=generation_id,
            created_at=now,
            last_seq=0,
            model=chat.model_name,
            parent_id=parent,
        ),
    )
    conn.execute(_set_leaf, {"sid": b.session_id, "leaf": generation_id})
    if claim_for is not None and active == 0:
        return Turn(
            generation_id, "running", 0, created=True, job=claim(conn, generation_id, claim_for, max_history, reserve)
        )
    return Turn(generation_id, "queued", active, created=True)
