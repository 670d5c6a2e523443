"""A send's statements on SQLAlchemy Core, as plain functions of a connection, each run as one
transaction by `Database.run`: the turn (the user's message and its queued answer), the
claim that turns a queued answer into a job, and an OpenAI-compatible call's session with
its turn. Core on the tables, not the ORM: these run for every message, and the ORM's unit of
work and identity map cost more than the statements themselves. SQLite runs the same
contract on its cursor (store_sqlite.py)."""

from collections.abc import Callable

from sqlalchemy import Connection, bindparam, insert, select

from models.db import User, new_id, utcnow
from services.errors import Unauthorized
from services.generations import store_statements as q
from services.generations.store_rules import build_job, check_queue, path_history
from services.generations.store_types import ACTIVE, Job, NewCall, Turn

CreateTurn = Callable[..., Turn | None]
_user_exists = select(User.__table__.c.id).where(User.__table__.c.id == bindparam("uid"))


def by_client_msg(conn: Connection, session_id: str, client_msg_id: str) -> Turn | None:
    row = conn.execute(q.by_client_msg, {"sid": session_id, "cid": client_msg_id}).first()
    if row is None:
        return None
    position = int(conn.scalar(q.count_ahead, {"sid": session_id, "pk": row.pk}) or 0) if row.status in ACTIVE else 0
    return Turn(row.id, row.status, position, created=False)


def lock_chat(conn: Connection, session_id: str) -> None:
    """PostgreSQL: sends racing into one session queue here, so each counts the ones committed
    before it: exact positions, submission order, and at most one claims an idle session.
    (SQLite: one writer thread already orders them.)"""
    if conn.dialect.name != "sqlite":
        conn.execute(q.lock_chat, {"sid": session_id})


def insert_message(conn: Connection, **values: object) -> None:
    """One row of `messages`, every column a send writes given (the others default)."""
    conn.execute(q.insert_message, {"client_msg_id": None, "last_seq": 0, "model": None, **values})


def _insert_turn(
    conn: Connection,
    session_id: str,
    generation_id: str,
    text: str,
    client_msg_id: str | None,
    model: str | None,
    parent: str | None,
) -> None:
    """The user's row and its queued answer's, the user's first: its pk orders the history."""
    user_msg_id, common = new_id(), dict(session_id=session_id, generation_id=generation_id, created_at=utcnow())
    insert_message(
        conn,
        id=user_msg_id,
        role="user",
        content=text,
        status="completed",
        client_msg_id=client_msg_id,
        parent_id=parent,
        **common,
    )
    insert_message(
        conn,
        id=generation_id,
        role="assistant",
        content="",
        status="queued",
        model=model,
        parent_id=user_msg_id,
        **common,
    )


def create_turn(
    conn: Connection,
    session_id: str,
    model: str | None,
    text: str,
    client_msg_id: str | None,
    title: str | None,
    max_queued: int,
    claim_for: str | None = None,
    max_history: int = 0,
    owner: str | None = None,
    reserve: int = 0,
) -> Turn | None:
    """The user message and its queued answer; `title` is set only while the session has none.
    With `claim_for`, an answer with nothing ahead is claimed for that worker right away. With
    `owner`, only into a session of that user (None otherwise), whose row gives the model and
    the title: no separate lookup before sending."""
    lock_chat(conn, session_id)
    if owner is not None:
        row = conn.execute(q.owned_chat, {"sid": session_id, "uid": owner}).first()
        if row is None:
            return None
        model, title, parent = row.model_name, None if row.title else title, row.active_leaf_id
    else:
        parent = conn.scalar(q.leaf_of, {"sid": session_id})
    if client_msg_id is not None:
        existing = by_client_msg(conn, session_id, client_msg_id)
        if existing is not None:
            return existing
    active = int(conn.scalar(q.count_active, {"sid": session_id}) or 0)
    check_queue(active, max_queued)
    generation_id = new_id()
    _insert_turn(conn, session_id, generation_id, text, client_msg_id, model, parent)
    conn.execute(q.set_leaf, {"sid": session_id, "leaf": generation_id})
    if title is not None:  # conditional: a title the user chose, even meanwhile, is kept
        conn.execute(q.set_title, {"sid": session_id, "title": title})
    if claim_for is not None and active == 0:
        job = claim(conn, generation_id, claim_for, max_history, reserve)
        return Turn(generation_id, "running", 0, created=True, job=job)
    return Turn(generation_id, "queued", active, created=True)


def claim(conn: Connection, generation_id: str, worker_id: str, max_history: int, reserve: int = 0) -> Job | None:
    """queued -> running, and the request built from the history as it stands now; chunk
    seqs up to `reserve` may be sent before the first flush."""
    row = conn.execute(
        q.claim, {"gid": generation_id, "now": utcnow(), "worker": worker_id, "reserve": reserve}
    ).first()
    if row is None:
        return None
    chat = conn.execute(q.config, {"sid": row.session_id}).one()
    path = conn.execute(q.history, {"start": row.parent_id, "depth": 2 * max_history}).all()
    history, continuing = path_history(path, max_history)
    return build_job(generation_id, row.model, chat, chat.fallback_models, history, chat.options, continuing)


def user_active_sessions(conn: Connection, user_id: str) -> list[str]:
    """The session of each of the user's queued or running answers (one entry per answer)."""
    return [str(s) for s in conn.execute(q.user_active_sessions, {"uid": user_id}).scalars()]


def create_call(
    conn: Connection,
    call: NewCall,
    create: CreateTurn,
    claim_for: str | None,
    max_queued: int,
    max_history: int,
    reserve: int,
) -> Turn:
    """The session, its history and its turn in one transaction, `create` being the
    implementation's `create_turn`. The token's user is looked up here, not in a round trip
    of its own before."""
    chat = call.chat
    if conn.execute(_user_exists, {"uid": chat["user_id"]}).first() is None:
        raise Unauthorized("The token's user no longer exists.", code="invalid_token")
    ids = [new_id() for _ in call.history]
    # A linear branch: each message follows the one before, and the turn answers the last.
    conn.execute(insert(q.chats), {**chat, "active_leaf_id": ids[-1] if ids else None})
    if call.history:  # executemany in list order: the rows' integer keys order the history
        rows = [
            {
                "id": ids[i],
                "session_id": chat["id"],
                "role": role,
                "content": text,
                "status": "completed",
                "created_at": chat["created_at"],
                "last_seq": 0,
                "parent_id": ids[i - 1] if i else None,
            }
            for i, (role, text) in enumerate(call.history)
        ]
        conn.execute(insert(q.messages), rows)
    # `reserve`: an answer claimed here must bound its seqs like any other (crash recovery).
    turn = create(
        conn, chat["id"], chat["model_name"], call.text, None, None, max_queued, claim_for, max_history, None, reserve
    )
    assert turn is not None  # no owner given: always stored
    return turn
