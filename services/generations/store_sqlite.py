"""The generation path's hottest statements on SQLite, run on the driver's cursor, for
SqliteGenerationStore (store.py).

Same contract as their Core versions in store_sql.py / store_sql_rows.py, which PostgreSQL
(and SQLite's rarer statements) keep. An SQLAlchemy execution costs many times the same
statement on the sqlite3 cursor, and a message runs ten of them: with Core that was more CPU
per answer than relaying its hundred tokens (the figures are in bench/README.md, "What
changed"). The transaction is
still SQLAlchemy's (`Database.run`), and values go through the columns' own type
processors, so the rows are byte-for-byte what the Core statements write
(tests/test_store_sqlite.py checks both ways)."""

import sqlite3
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple, cast

from sqlalchemy import Column, Connection, Table
from sqlalchemy.dialects import sqlite

from models.db import ChatSession, Message, new_id, utcnow
from services.generations.store_rules import build_job, check_queue, path_history
from services.generations.store_sql import by_client_msg
from services.generations.store_types import ACTIVE, Job, Turn

_dialect = sqlite.dialect()
_m, _c = cast(Table, Message.__table__).c, cast(Table, ChatSession.__table__).c


def _same(value: Any) -> Any:
    return value


def _bind(column: Column[Any]) -> Callable[[Any], Any]:
    return column.type.dialect_impl(_dialect).bind_processor(_dialect) or _same


def _result(column: Column[Any]) -> Callable[[Any], Any]:
    return column.type.dialect_impl(_dialect).result_processor(_dialect, None) or _same


_when = _bind(_m.created_at)  # every datetime column is UTCDateTime: one format
_json = _bind(_m.usage)  # usage and error: JSON
_fallbacks, _options = _result(_c.fallback_models), _result(_c.options)

_ACTIVE = "status IN ('queued', 'running')"
assert ACTIVE == ("queued", "running")
_COUNT_ACTIVE = f"SELECT count(*) FROM messages WHERE session_id = ? AND role = 'assistant' AND {_ACTIVE}"
_INSERT = (
    "INSERT INTO messages (id, session_id, role, content, status, client_msg_id, generation_id, "
    "created_at, last_seq, model, parent_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)"
)
_LEAF_OF = "SELECT active_leaf_id FROM chat_sessions WHERE id = ?"
_SET_LEAF = "UPDATE chat_sessions SET active_leaf_id = ? WHERE id = ?"
_SET_TITLE = "UPDATE chat_sessions SET title = ?, updated_at = ? WHERE id = ? AND title = ''"
_CLAIM = (
    "UPDATE messages SET status = 'running', started_at = ?, heartbeat_at = ?, worker_id = ?, "
    "seq_reserved = ? WHERE id = ? AND status = 'queued' RETURNING session_id, pk, model, parent_id"
)
_OWNED_CHAT = "SELECT model_name, title, active_leaf_id FROM chat_sessions WHERE id = ? AND user_id = ?"
_CONFIG = (
    "SELECT system_prompt, model_name, temperature, max_tokens, top_p, fallback_models, options "
    "FROM chat_sessions WHERE id = ?"
)
_HISTORY = (
    "WITH RECURSIVE path(id, parent_id, role, content, depth) AS ("
    "SELECT id, parent_id, role, content, 0 FROM messages WHERE id = ? UNION ALL "
    "SELECT m.id, m.parent_id, m.role, m.content, p.depth + 1 FROM messages AS m "
    "JOIN path AS p ON m.id = p.parent_id WHERE p.depth < ?) "
    "SELECT role, content FROM path ORDER BY depth"
)
_FLUSH = (
    "UPDATE messages SET content = ?, last_seq = ?, heartbeat_at = ?, seq_reserved = max(seq_reserved, ?) "
    "WHERE id = ? AND status = 'running'"
)
_HEARTBEAT = "UPDATE messages SET heartbeat_at = ? WHERE id = ? AND status = 'running'"
_USER_ACTIVE = (
    "SELECT m.session_id FROM messages m JOIN chat_sessions s ON s.id = m.session_id "
    f"WHERE s.user_id = ? AND m.role = 'assistant' AND m.{_ACTIVE}"
)
_OLDEST_ACTIVE = (
    f"SELECT id, status FROM messages WHERE session_id = ? AND role = 'assistant' AND {_ACTIVE} ORDER BY pk LIMIT 1"
)


class _Config(NamedTuple):  # a session's generation settings (store_rules.ChatConfig)
    system_prompt: str | None
    model_name: str
    temperature: float
    max_tokens: int
    top_p: float


def _cursor(conn: Connection) -> sqlite3.Connection:
    driver = conn.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    return driver


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
    """store_sql.create_turn. The write lock is taken first, so the owner check, the count
    and the inserts see no send (or deletion) in between, whichever connection it came from."""
    db = _cursor(conn)
    if not db.in_transaction:
        db.execute("BEGIN IMMEDIATE")
    if owner is not None:
        row = db.execute(_OWNED_CHAT, (session_id, owner)).fetchone()
        if row is None:
            return None
        model, title, parent = row[0], None if row[1] else title, row[2]
    else:
        parent = db.execute(_LEAF_OF, (session_id,)).fetchone()[0]
    if client_msg_id is not None:
        existing = by_client_msg(conn, session_id, client_msg_id)
        if existing is not None:
            return existing
    active = db.execute(_COUNT_ACTIVE, (session_id,)).fetchone()[0]
    check_queue(active, max_queued)
    generation_id, user_msg_id, now = new_id(), new_id(), _when(utcnow())
    # The user's row first: its pk orders the history.
    db.execute(
        _INSERT, (user_msg_id, session_id, "user", text, "completed", client_msg_id, generation_id, now, None, parent)
    )
    db.execute(
        _INSERT, (generation_id, session_id, "assistant", "", "queued", None, generation_id, now, model, user_msg_id)
    )
    db.execute(_SET_LEAF, (generation_id, session_id))
    if title is not None:  # conditional: a title the user chose, even meanwhile, is kept
        db.execute(_SET_TITLE, (title, now, session_id))
    if claim_for is not None and active == 0:
        job = claim(conn, generation_id, claim_for, max_history, reserve)
        return Turn(generation_id, "running", 0, created=True, job=job)
    return Turn(generation_id, "queued", active, created=True)


def claim(conn: Connection, generation_id: str, worker_id: str, max_history: int, reserve: int = 0) -> Job | None:
    db = _cursor(conn)
    now = _when(utcnow())
    row = db.execute(_CLAIM, (now, now, worker_id, reserve, generation_id)).fetchone()
    if row is None:
        return None
    session_id, _pk, model, parent_id = row
    *config, fallbacks, options = db.execute(_CONFIG, (session_id,)).fetchone()
    history, continuing = path_history(db.execute(_HISTORY, (parent_id, 2 * max_history)), max_history)
    options = _options(options) if options is not None else None
    return build_job(generation_id, model, _Config(*config), _fallbacks(fallbacks), history, options, continuing)


def flush(conn: Connection, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
    db = _cursor(conn)
    now = _when(utcnow())
    if changed:
        db.executemany(_FLUSH, [(text, seq, now, res, gid) for gid, text, seq, res in changed])
    if unchanged:
        db.executemany(_HEARTBEAT, [(now, gid) for gid in unchanged])


@lru_cache(maxsize=64)
def _finalize_sql(columns: tuple[str, ...], only_if: tuple[str, ...]) -> str:
    sets = ", ".join(f"{c} = ?" for c in columns)
    return f"UPDATE messages SET {sets} WHERE id = ? AND status IN ({', '.join('?' * len(only_if))})"


_FINAL_BIND = {"usage": _json, "error": _json, "finished_at": _when}


def finalize(conn: Connection, generation_id: str, values: dict[str, Any], only_if: tuple[str, ...]) -> bool:
    columns = tuple(_m[c].name for c in values)  # only the table's own columns make it into the SQL
    params = [_FINAL_BIND[c](v) if c in _FINAL_BIND else v for c, v in values.items()]
    cur = _cursor(conn).execute(_finalize_sql(columns, only_if), (*params, generation_id, *only_if))
    return cur.rowcount == 1


def next_runnable(conn: Connection, session_id: str) -> str | None:
    row = _cursor(conn).execute(_OLDEST_ACTIVE, (session_id,)).fetchone()
    return str(row[0]) if row is not None and row[1] == "queued" else None


def user_active_sessions(conn: Connection, user_id: str) -> list[str]:
    """store_sql.user_active_sessions: it runs before every message of a user with limits."""
    return [str(row[0]) for row in _cursor(conn).execute(_USER_ACTIVE, (user_id,))]
