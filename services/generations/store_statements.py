"""The generation path's SQLAlchemy Core statements, built once with bind parameters:
SQLAlchemy then reuses their cache key and compiled form, where a statement built per call
is keyed again on every execution. Used by store_sql.py, store_sql_rows.py and store_tree.py."""

from typing import cast

from sqlalchemy import Table, bindparam, case, func, insert, literal, select, update

from models.db import ChatSession, Message
from services.generations.store_types import ACTIVE

messages = cast(Table, Message.__table__)
chats = cast(Table, ChatSession.__table__)
answers = (messages.c.role == "assistant",)

count_active = (
    select(func.count())
    .select_from(messages)
    .where(messages.c.session_id == bindparam("sid"), *answers, messages.c.status.in_(ACTIVE))
)
count_ahead = count_active.where(messages.c.pk < bindparam("pk"))
_user_msg = messages.alias("u")
by_client_msg = (
    select(messages.c.id, messages.c.status, messages.c.pk)
    .join(_user_msg, _user_msg.c.generation_id == messages.c.id)
    .where(_user_msg.c.session_id == bindparam("sid"), _user_msg.c.client_msg_id == bindparam("cid"))
)
insert_message = insert(messages)
lock_chat = select(chats.c.id).where(chats.c.id == bindparam("sid")).with_for_update()
owned_chat = select(chats.c.model_name, chats.c.title, chats.c.active_leaf_id).where(
    chats.c.id == bindparam("sid"), chats.c.user_id == bindparam("uid")
)
# The tree (see models/db.py): a send answers the session's active leaf and becomes it.
leaf_of = select(chats.c.active_leaf_id).where(chats.c.id == bindparam("sid"))
set_leaf = update(chats).where(chats.c.id == bindparam("sid")).values(active_leaf_id=bindparam("leaf"))
set_title = update(chats).where(chats.c.id == bindparam("sid"), chats.c.title == "").values(title=bindparam("title"))
user_active_sessions = (
    select(messages.c.session_id)
    .select_from(messages.join(chats, chats.c.id == messages.c.session_id))
    .where(chats.c.user_id == bindparam("uid"), *answers, messages.c.status.in_(ACTIVE))
)

claim = (
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
config = select(
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
history = select(_up.c.role, _up.c.content).order_by(_up.c.depth)

# The reservation only grows: a flush and an early reservation may commit in either order.
_grown = case((messages.c.seq_reserved > bindparam("res"), messages.c.seq_reserved), else_=bindparam("res"))
flush_text = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "running")
    .values(content=bindparam("text"), last_seq=bindparam("seq"), heartbeat_at=bindparam("now"), seq_reserved=_grown)
)
reserve = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "running")
    .values(seq_reserved=_grown)
)
heartbeat = (
    update(messages)
    .where(messages.c.id == bindparam("gid"), messages.c.status == "running")
    .values(heartbeat_at=bindparam("now"))
)

get = select(messages).where(messages.c.id == bindparam("gid"), *answers)
get_owned = get.join(chats, chats.c.id == messages.c.session_id).where(chats.c.user_id == bindparam("uid"))
latest = (
    select(messages).where(messages.c.session_id == bindparam("sid"), *answers).order_by(messages.c.pk.desc()).limit(1)
)
active_in_session = (
    select(messages.c.id)
    .where(messages.c.session_id == bindparam("sid"), *answers, messages.c.status.in_(ACTIVE))
    .order_by(messages.c.pk)
)
oldest_active = (
    select(messages.c.id, messages.c.status)
    .where(messages.c.session_id == bindparam("sid"), *answers, messages.c.status.in_(ACTIVE))
    .order_by(messages.c.pk)
    .limit(1)
)
branch_target = select(
    messages.c.id,
    messages.c.role,
    messages.c.status,
    messages.c.finish_reason,
    messages.c.content,
    messages.c.parent_id,
).where(messages.c.id == bindparam("mid"), messages.c.session_id == bindparam("sid"))
