"""Branching turns: a regenerated answer, an edited message and its answer, a continuation.

Each is one transaction like a send (store_sql.create_turn): the session is locked (on
PostgreSQL; SQLite has one writer), its owner and the target message checked, the queue
counted, the rows inserted and the session's active leaf moved to the new answer. Rare
next to sends, so plain SQLAlchemy Core on every backend."""

from sqlalchemy import Connection

from models.db import new_id, utcnow
from services.errors import NotFound
from services.generations import store_statements as q
from services.generations.store_rules import answer_parent, check_queue
from services.generations.store_sql import by_client_msg, claim, insert_message, lock_chat
from services.generations.store_types import Branch, Turn


def create_branch(
    conn: Connection, b: Branch, max_queued: int, claim_for: str | None, max_history: int, reserve: int
) -> Turn:
    lock_chat(conn, b.session_id)
    chat = conn.execute(q.owned_chat, {"sid": b.session_id, "uid": b.user_id}).first()
    if chat is None:
        raise NotFound(f"session {b.session_id} not found", code="session_not_found")
    target = conn.execute(q.branch_target, {"mid": b.message_id, "sid": b.session_id}).first()
    if target is None:
        raise NotFound(f"message {b.message_id} not found", code="message_not_found")
    parent = answer_parent(b.op, target)
    if b.client_msg_id is not None:
        existing = by_client_msg(conn, b.session_id, b.client_msg_id)
        if existing is not None:
            return existing
    active = int(conn.scalar(q.count_active, {"sid": b.session_id}) or 0)
    check_queue(active, max_queued)
    generation_id, now = new_id(), utcnow()
    common = dict(session_id=b.session_id, generation_id=generation_id, created_at=now)
    if b.op == "edit":  # a sibling of the edited message: the old branch stays as it was
        parent = new_id()
        insert_message(
            conn,
            id=parent,
            role="user",
            content=b.text,
            status="completed",
            client_msg_id=b.client_msg_id,
            parent_id=target.parent_id,
            **common,
        )
    insert_message(
        conn,
        id=generation_id,
        role="assistant",
        content="",
        status="queued",
        model=chat.model_name,
        parent_id=parent,
        **common,
    )
    conn.execute(q.set_leaf, {"sid": b.session_id, "leaf": generation_id})
    if claim_for is not None and active == 0:
        job = claim(conn, generation_id, claim_for, max_history, reserve)
        return Turn(generation_id, "running", 0, created=True, job=job)
    return Turn(generation_id, "queued", active, created=True)
