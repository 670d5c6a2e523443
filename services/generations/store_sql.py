"""The generation path's statements, as plain functions of a connection, each run as one
transaction by `Database.run`. SQLAlchemy Core on the tables, not the ORM: these run for
every message and every second of every answer, and the ORM's unit of work and identity
map cost more than the statements themselves."""

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, bindparam, case, func, insert, literal, select, update

from models.db import ChatSession, Message, new_id, utcnow
from services.errors import RateLimited
from services.providers.base import ChatRequest

ACTIVE = ("queued", "running")
messages = Message.__table__
chats = ChatSession.__table__
_answers = (messages.c.role == "assistant",)


@dataclass
class Turn:
    generation_id: str
    status: str
    position: int  # the session's active generations ahead of this one
    created: bool  # False when client_msg_id matched an earlier send
    job: "Job | None" = None  # claimed with it (create_turn's claim_for)


@dataclass
class Job:
    generation_id: str
    model: str
    fallback_models: list[str]
    request: ChatRequest


# Statements are built once with bind parameters: SQLAlchemy then reuses their cache key
# and compiled form, where a statement built per call is keyed again on every execution.
_count_active = (
    select(func.count())
    .select_from(messages)
    .where(messages.c.session_id == bindparam("sid"), *_answers, messages.c.status.in_(ACTIVE))
)
_count_ahead = _count_active.where(messages.c.pk < bindparam("pk"))
_user_msg = messages.alias("u")
_by_client_msg = (
    select(messages.c.id, messages.c.status, messages.c.pk)
    .join(_user_msg, _user_msg.c.generation_id == messages.c.id)
    .where(_user_msg.c.session_id == bindparam("sid"), _user_msg.c.client_msg_id == bindparam("cid"))
)


def by_client_msg(conn: Connection, session_id: str, client_msg_id: str) -> Turn | None:
    row = conn.execute(_by_client_msg, {"sid": session_id, "cid": client_msg_id}).first()
    if row is None:
        return None
    position = conn.scalar(_count_ahead, {"sid": session_id, "pk": row.pk}) if row.status in ACTIVE else 0
    return Turn(row.id, row.status, position, created=False)


_insert = insert(messages)
_lock_chat = select(chats.c.id).where(chats.c.id == bindparam("sid")).with_for_update()
_owned_chat = select(chats.c.model_name, chats.c.title, chats.c.active_leaf_id).where(
    chats.c.id == bindparam("sid"), chats.c.user_id == bindparam("uid")
)
# The tree (see models/db.py): a send answers the session's active leaf and becomes it.
_leaf_of = select(chats.c.active_leaf_id).where(chats.c.id == bindparam("sid"))
_set_leaf = update(chats).where(chats.c.id == bindparam("sid")).values(active_leaf_id=bindparam("leaf"))
_set_title = update(chats).where(chats.c.id == bindparam("sid"), chats.c.title == "").values(title=bindparam("title"))


def check_queue(active: int, max_queued: int) -> None:
    if active >= max_queued:
        raise RateLimited(
            f"This session already has {active} answers queued or running; wait for them or cancel one.",
            code="queue_full",
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
    With `claim_for`, an answer with nothing ahead is claimed for that worker right away.
    With `owner`, only into a session of that user (None otherwise), whose row gives the
    model and tells whether it has a title: no separate lookup before sending."""
    if conn.dialect.name != "sqlite":  # (SQLite: one writer thread already orders them)
        # Sends racing into one session queue here, so each counts the ones committed before
        # it: exact positions, submission order, and at most one claims an idle session.
        conn.execute(_lock_chat, {"sid": session_id})
    if owner is not None:
        row = conn.execute(_owned_chat, {"sid": session_id, "uid": owner}).first()
        if row is None:
            return None
        model, title = row.model_name, None if row.title else title
    if client_msg_id is not None:
        existing = by_client_msg(conn, session_id, client_msg_id)
        if existing is not None:
            return existing
    active = conn.scalar(_count_active, {"sid": session_id})
    check_queue(active, max_queued)
    parent = row.active_leaf_id if owner is not None else conn.scalar(_leaf_of, {"sid": session_id})
    generation_id, user_msg_id, now = new_id(), new_id(), utcnow()
    # Two statements, the user's first: its pk orders the history.
    conn.execute(
        _insert,
        dict(
            id=user_msg_id,
            session_id=session_id,
            role="user",
            content=text,
            status="completed",
            client_msg_id=client_msg_id,
            generation_id=generation_id,
            created_at=now,
            last_seq=0,
            model=None,
            parent_id=parent,
        ),
    )
    conn.execute(
        _insert,
        dict(
            id=generation_id,
            session_id=session_id,
            role="assistant",
            content="",
            status="queued",
            client_msg_id=None,
            generation_id=generation_id,
            created_at=now,
            last_seq=0,
            model=model,
            parent_id=user_msg_id,
        ),
    )
    conn.execute(_set_leaf, {"sid": session_id, "leaf": generation_id})
    if title is not None:  # conditional: a title the user chose, even meanwhile, is kept
        conn.execute(_set_title, {"sid": session_id, "title": title})
    if claim_for is not None and active == 0:
        job = claim(conn, generation_id, claim_for, max_history, reserve)
        return Turn(generation_id, "running", 0, created=True, job=job)
    return Turn(generation_id, "queued", active, created=True)


_claim = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "queued")
    .values(
        status="running",
        started_at=bindparam("now"),
        heartbeat_at=bindparam("now"),
        worker_id=bindparam("worker"),
        seq_reserved=bindparam("reserve"),
    )
    .returning(messages.c.session_id, messages.c.pk, messages.c.model, messages.c.parent_id)
)
_config = select(
    chats.c.system_prompt,
    chats.c.model_name,
    chats.c.temperature,
    chats.c.max_tokens,
    chats.c.top_p,
    chats.c.fallback_models,
    chats.c.options,
).where(chats.c.id == bindparam("sid"))
# The prompt follows the branch only: from the answer's parent up through the parents,
# newest first, empty ones (failed answers) included so path_history sees a continuation.
_up = (
    select(messages.c.id, messages.c.parent_id, messages.c.role, messages.c.content, literal(0).label("depth"))
    .where(messages.c.id == bindparam("start"))
    .cte("path", recursive=True)
)
_up = _up.union_all(
    select(messages.c.id, messages.c.parent_id, messages.c.role, messages.c.content, _up.c.depth + 1)
    .join(_up, messages.c.id == _up.c.parent_id)
    .where(_up.c.depth < bindparam("depth"))
)
_history = select(_up.c.role, _up.c.content).order_by(_up.c.depth)
CONTINUE_PROMPT = (
    "Continue your previous answer exactly where it stopped. Do not repeat any of it and do not "
    "comment on the continuation."
)


def path_history(path_newest_first, max_history: int) -> tuple[list[tuple[str, str]], bool]:
    """(history newest first, at most `max_history` turns with text; whether the answer continues
    the last one). An answer continued (and its continuations) are one assistant turn."""
    rows = list(path_newest_first)
    continuing = bool(rows) and rows[0][0] == "assistant"
    turns: list[tuple[str, str]] = []
    for role, content in rows:
        if not content:
            continue
        if turns and role == "assistant" and turns[-1][0] == "assistant":
            turns[-1] = (role, content + turns[-1][1])  # newest first: the older text goes before
        elif len(turns) < max_history:
            turns.append((role, content))
        else:
            break
    return turns, continuing


def claim(conn: Connection, generation_id: str, worker_id: str, max_history: int, reserve: int = 0) -> Job | None:
    """queued -> running, and the request built from the history as it stands now; chunk
    seqs up to `reserve` may be sent before the first flush."""
    row = conn.execute(_claim, {"gid": generation_id, "now": utcnow(), "worker": worker_id, "reserve": reserve}).first()
    if row is None:
        return None
    chat = conn.execute(_config, {"sid": row.session_id}).one()
    path = conn.execute(_history, {"start": row.parent_id, "depth": 2 * max_history}).all()
    history, continuing = path_history(path, max_history)
    return build_job(
        generation_id,
        row.model,
        chat.system_prompt,
        chat.model_name,
        chat.temperature,
        chat.max_tokens,
        chat.top_p,
        chat.fallback_models,
        history,
        chat.options,
        continuing,
    )


def build_job(
    generation_id: str,
    model: str | None,
    system_prompt: str | None,
    model_name: str,
    temperature: float,
    max_tokens: int,
    top_p: float,
    fallbacks: list[str] | None,
    history_newest_first,
    options: dict | None = None,
    continuing: bool = False,
) -> Job:
    """The request as the session's config and history stand at claim time. `options` are an
    OpenAI-compatible call's extras (only `stop` reaches the provider). `continuing`: the
    answer extends the last assistant turn, so the model is asked to go on from it."""
    turns = [{"role": "system", "content": system_prompt}] if system_prompt else []
    turns += [{"role": role, "content": content} for role, content in reversed(history_newest_first)]
    if continuing:
        turns.append({"role": "user", "content": CONTINUE_PROMPT})
    request = ChatRequest(
        model=model or model_name,
        messages=turns,
        temperature=temperature,
        max_tokens=max_tokens,
        top_p=top_p,
        stop=tuple((options or {}).get("stop") or ()),
    )
    return Job(generation_id, request.model, list(fallbacks or []), request)


# The reservation only grows: a flush and an early reservation may commit in either order.
_grown = case((messages.c.seq_reserved > bindparam("res"), messages.c.seq_reserved), else_=bindparam("res"))
_flush_text = (
    update(messages)
    .where(
        messages.c.id == bindparam("gid"),
        messages.c.status == "running",
    )
    .values(content=bindparam("text"), last_seq=bindparam("seq"), heartbeat_at=bindparam("now"), seq_reserved=_grown)
)
_reserve = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "running")
    .values(seq_reserved=_grown)
)
_heartbeat = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "running")
    .values(heartbeat_at=bindparam("now"))
)


def flush(conn: Connection, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
    """Every running answer of this process in one transaction: (id, text, seq, reserved
    seq bound) for those with new text, ids only for those whose write is just the heartbeat."""
    now = utcnow()
    if changed:
        conn.execute(_flush_text, [{"gid": g, "text": t, "seq": s, "now": now, "res": r} for g, t, s, r in changed])
    if unchanged:
        conn.execute(_heartbeat, [{"gid": g, "now": now} for g in unchanged])


def reserve(conn: Connection, generation_id: str, bound: int) -> None:
    """Raises a running answer's reserved seq bound between flushes (a fast producer)."""
    conn.execute(_reserve, {"gid": generation_id, "res": bound})


def finalize(conn: Connection, generation_id: str, values: dict, only_if: tuple[str, ...]) -> bool:
    return (
        conn.execute(
            update(messages).where(messages.c.id == generation_id, messages.c.status.in_(only_if)).values(**values)
        ).rowcount
        == 1
    )


_get = select(messages).where(messages.c.id == bindparam("gid"), *_answers)
_get_owned = _get.join(chats, chats.c.id == messages.c.session_id).where(chats.c.user_id == bindparam("uid"))
_oldest_active = (
    select(messages.c.id, messages.c.status)
    .where(
        messages.c.session_id == bindparam("sid"),
        *_answers,
        messages.c.status.in_(ACTIVE),
    )
    .order_by(messages.c.pk)
    .limit(1)
)


def get(conn: Connection, generation_id: str, user_id: str | None):
    if user_id is None:
        return conn.execute(_get, {"gid": generation_id}).first()
    return conn.execute(_get_owned, {"gid": generation_id, "uid": user_id}).first()


def next_runnable(conn: Connection, session_id: str) -> str | None:
    """The session's oldest active generation if it is still queued; None when nothing is
    queued or one is running (or claimed and about to run)."""
    row = conn.execute(_oldest_active, {"sid": session_id}).first()
    return row.id if row is not None and row.status == "queued" else None


def running_by_worker(conn: Connection, limit: int) -> list[tuple[str, str, str]]:
    """(generation, session, worker) of running generations, for the dead-worker check."""
    return [
        tuple(row)
        for row in conn.execute(
            select(messages.c.id, messages.c.session_id, messages.c.worker_id)
            .where(*_answers, messages.c.status == "running", messages.c.worker_id.is_not(None))
            .limit(limit)
        )
    ]


def stale_running(conn: Connection, before: datetime, limit: int) -> list[str]:
    return list(
        conn.scalars(
            select(messages.c.id)
            .where(
                *_answers,
                messages.c.status == "running",
                (messages.c.heartbeat_at < before) | messages.c.heartbeat_at.is_(None),
            )
            .order_by(messages.c.pk)
            .limit(limit)
        )
    )
