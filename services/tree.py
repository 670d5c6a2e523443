"""A conversation is a tree: regenerate, edit, continue, switch versions, and the view of the
active branch with the versions at each fork.

Every message points at its parent (models/db.py); the session stores its active leaf, so
the branch shown, the one a send extends and the prompt the model sees are the same on
every device. Versions of a message are its siblings: the children of its parent, oldest
first. A continuation is an answer whose parent is the answer it extends."""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select, update

from models.db import Message
from models.schemas import is_blank
from services import tables
from services.container import Services
from services.errors import InvalidInput, NotFound
from services.generations.service import Accepted
from services.generations.store_types import Branch

__all__ = ["Branch", "PathEntry", "active_path", "branch", "switch"]

_messages, _chats = tables.messages, tables.chat_sessions


@dataclass
class PathEntry:
    message: Message
    versions: list[str]  # ids of the message and its siblings, oldest first


def _children(rows: Sequence[Message]) -> dict[str | None, list[str]]:
    kids: dict[str | None, list[str]] = {}
    for m in sorted(rows, key=lambda r: r.pk):
        kids.setdefault(m.parent_id, []).append(m.id)
    return kids


def active_path(rows: Sequence[Message], leaf_id: str | None) -> list[PathEntry]:
    """The branch ending at `leaf_id` (the newest message when it is unset or gone), root
    first, each message with its versions."""
    by_id = {m.id: m for m in rows}
    leaf = by_id.get(leaf_id or "") or (max(rows, key=lambda r: r.pk) if rows else None)
    path: list[Message] = []
    seen: set[str] = set()
    while leaf is not None and leaf.id not in seen:  # `seen`: a damaged chain cannot loop
        seen.add(leaf.id)
        path.append(leaf)
        leaf = by_id.get(leaf.parent_id) if leaf.parent_id else None
    kids = _children(rows)
    return [PathEntry(m, kids.get(m.parent_id, [m.id])) for m in reversed(path)]


def _descend(rows: Sequence[tuple[str, str | None, int]], start: str) -> str:
    """The leaf reached from `start` by always taking the newest child."""
    newest: dict[str, tuple[int, str]] = {}
    for mid, parent, pk in rows:
        if parent is not None and (parent not in newest or pk > newest[parent][0]):
            newest[parent] = (pk, mid)
    node, steps = start, 0
    while node in newest and steps <= len(rows):
        node, steps = newest[node][1], steps + 1
    return node


_owned = select(_chats.c.id).where(_chats.c.id == bindparam("sid"), _chats.c.user_id == bindparam("uid"))
_tree = select(_messages.c.id, _messages.c.parent_id, _messages.c.pk).where(_messages.c.session_id == bindparam("sid"))
_set_leaf = update(_chats).where(_chats.c.id == bindparam("sid")).values(active_leaf_id=bindparam("leaf"))


def _switch(conn: Connection, user_id: str, session_id: str, message_id: str) -> str:
    if conn.execute(_owned, {"sid": session_id, "uid": user_id}).first() is None:
        raise NotFound(f"session {session_id} not found", code="session_not_found")
    rows = [(r.id, r.parent_id, r.pk) for r in conn.execute(_tree, {"sid": session_id})]
    if message_id not in {r[0] for r in rows}:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    leaf = _descend(rows, message_id)
    conn.execute(_set_leaf, {"sid": session_id, "leaf": leaf})
    return leaf


async def switch(services: Services, user_id: str, session_id: str, message_id: str) -> str:
    """Makes the branch through `message_id` the active one (down to its newest leaf), stored
    so that a reload or another device shows the same; returns the new active leaf."""
    return await services.db.run(_switch, user_id, session_id, message_id)


async def branch(services: Services, b: Branch) -> Accepted:
    """Regenerates, edits or continues, as a new generation beside or after the old ones,
    under the same limits as a send."""
    s = services.settings
    if b.op == "edit":
        if b.text is None or is_blank(b.text):
            raise InvalidInput("message must not be empty", code="empty_message")
        if len(b.text) > s.max_message_chars:
            raise InvalidInput(f"message: at most {s.max_message_chars} characters", code="message_too_long")
    await services.usage.admit(b.user_id)
    await services.limits.check_generation_start(b.user_id, b.session_id)
    return await services.generations.submit_with(
        b.session_id, lambda claim_for: services.store.create_branch(b, claim_for=claim_for)
    )
