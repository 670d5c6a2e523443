"""store_sqlite (the per-message statements on the sqlite3 cursor) against their Core
versions in store_sql / store_sql_rows: the same calls on the same database must leave the same rows, read
back through the ORM with the same types (aware datetimes, JSON), and behave the same at
the edges (queue limit, title kept, claim of a taken job, finalize only_if)."""

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from models.db import ChatSession, Message, utcnow
from services.container import build
from services.errors import RateLimited
from services.generations import store_sql, store_sql_rows, store_sqlite
from services.generations.store import SqliteGenerationStore
from tests.scaleout_support import new_chat
from tests.support import make_settings

DATETIMES = ("created_at", "started_at", "heartbeat_at", "finished_at")
IGNORED = {
    "pk",
    "id",
    "generation_id",
    "session_id",
    "parent_id",
    "created_at",
    "started_at",
    "heartbeat_at",
    "finished_at",
}


# The Core versions, which PostgreSQL runs (SqlGenerationStore).
CORE = SimpleNamespace(
    create_turn=store_sql.create_turn,
    claim=store_sql.claim,
    flush=store_sql_rows.flush,
    finalize=store_sql_rows.finalize,
    next_runnable=store_sql_rows.next_runnable,
)


@pytest.fixture
async def services(tmp_path):
    api = build(make_settings(tmp_path, max_queued_per_session=3))
    await api.start()
    yield api
    await api.stop()


async def _scenario(services, impl) -> tuple[ChatSession, list[Message]]:
    db = services.db
    chat = await new_chat(services, "offline/echo")
    async with db.sessionmaker() as s:  # a system prompt and fallbacks, to see them in the job
        row = await s.get(ChatSession, chat.id)
        row.system_prompt, row.fallback_models = "be brief", ["offline/echo"]
        await s.commit()
    first = await db.run(impl.create_turn, chat.id, chat.model_name, "hello", "c-1", "Hello", 3, "w1", 50, None, 8)
    assert first.created and first.status == "running" and first.position == 0
    assert first.job.request.messages == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello"},
    ]
    assert first.job.fallback_models == ["offline/echo"] and first.job.model == "offline/echo"
    again = await db.run(impl.create_turn, chat.id, chat.model_name, "hello", "c-1", None, 3, "w1", 50)
    assert (again.generation_id, again.created) == (first.generation_id, False)
    second = await db.run(impl.create_turn, chat.id, chat.model_name, "more", None, "Other title", 3, "w1", 50)
    assert (second.status, second.position, second.job) == ("queued", 1, None)
    assert await db.run(impl.next_runnable, chat.id) is None  # the first one runs
    await db.run(impl.create_turn, chat.id, chat.model_name, "third", None, None, 3, None, 50)
    with pytest.raises(RateLimited):
        await db.run(impl.create_turn, chat.id, chat.model_name, "fourth", None, None, 3, None, 50)
    assert (await services.store.get(first.generation_id)).seq_reserved == 8  # reserved by the claim
    # The reservation only grows: a flush committing after a later reservation keeps it.
    await db.run(impl.flush, [(first.generation_id, "Hi", 1, 300)], [])
    await db.run(impl.flush, [(first.generation_id, "Hi the", 2, 100)], [second.generation_id])
    assert (await services.store.get(first.generation_id)).seq_reserved == 300
    assert await db.run(
        impl.finalize,
        first.generation_id,
        dict(
            status="completed",
            finish_reason="stop",
            last_seq=4,
            usage={"prompt_tokens": 3, "completion_tokens": 2},
            error=None,
            finished_at=utcnow(),
            content="Hi there",
            model="offline/echo",
        ),
        ("queued", "running"),
    )
    assert not await db.run(impl.finalize, first.generation_id, dict(status="failed"), ("queued", "running"))
    assert await db.run(impl.next_runnable, chat.id) == second.generation_id
    job = await db.run(impl.claim, second.generation_id, "w2", 50, 16)
    assert [m["content"] for m in job.request.messages] == ["be brief", "hello", "Hi there", "more"]
    assert await db.run(impl.claim, second.generation_id, "w3", 50) is None  # taken
    # With an owner: only into that user's session; its row gives the model, and its title stays.
    assert (
        await db.run(
            impl.create_turn, chat.id, None, "not mine", None, "Not mine", 3, None, 50, "01ARZ3NDEKTSV4RRFFQ69G5FAV"
        )
        is None
    )
    mine = await db.run(impl.create_turn, chat.id, None, "mine", None, "Mine", 3, None, 50, chat.user_id)
    assert (mine.created, mine.status, mine.position) == (True, "queued", 2)
    async with db.sessionmaker() as s:
        chat = await s.get(ChatSession, chat.id)
        rows = list(await s.scalars(select(Message).where(Message.session_id == chat.id).order_by(Message.pk)))
    return chat, rows


def _columns(row) -> dict:
    return {c.key: getattr(row, c.key) for c in row.__table__.columns if c.key not in IGNORED}


async def test_both_statement_sets_leave_the_same_rows(services):
    core_chat, core_rows = await _scenario(services, CORE)
    fast_chat, fast_rows = await _scenario(services, store_sqlite)
    assert [_columns(r) for r in fast_rows] == [_columns(r) for r in core_rows]

    # The same tree: each row's parent is the same row (by position) under both.
    def parents(rows):
        at = {r.id: i for i, r in enumerate(rows)}
        return [at.get(r.parent_id) for r in rows]

    assert parents(fast_rows) == parents(core_rows) == [None, *range(len(core_rows) - 1)]
    assert fast_chat.active_leaf_id == fast_rows[-1].id and core_chat.active_leaf_id == core_rows[-1].id
    assert fast_chat.title == core_chat.title == "Hello"
    assert fast_chat.updated_at > fast_chat.created_at  # the title change touched it, as Core's onupdate does
    for core, fast in zip(core_rows, fast_rows, strict=True):
        for key in DATETIMES:
            a, b = getattr(core, key), getattr(fast, key)
            assert (a is None) == (b is None), key
            assert b is None or b.tzinfo is not None, key
    usage = [r.usage for r in fast_rows if r.role == "assistant"]
    assert usage[0] == {"prompt_tokens": 3, "completion_tokens": 2} and usage[1] is None
    assert fast_rows[1].worker_id == "w1" and fast_rows[3].worker_id == "w2"
    assert [r.content for r in fast_rows if r.role == "user"][-1] == "mine"  # "not mine" left nothing
    assert fast_rows[-1].model == fast_chat.model_name

    # Stored as the same text, not just read back alike: SQLite compares these as strings
    # (stale heartbeats), so '...+00:00' or a 'T' would sort differently.
    def stored(conn, ids):
        return [
            conn.exec_driver_sql(f"SELECT {', '.join(DATETIMES)}, usage, error FROM messages WHERE id = ?", (i,)).one()
            for i in ids
        ]

    core_raw = await services.db.run(stored, [r.id for r in core_rows])
    fast_raw = await services.db.run(stored, [r.id for r in fast_rows])
    shape = [[None if v is None else re.sub(r"\d", "0", v) for v in row] for row in core_raw]
    assert [[None if v is None else re.sub(r"\d", "0", v) for v in row] for row in fast_raw] == shape
    assert shape[1][:4] == ["0000-00-00 00:00:00.000000"] * 4


async def test_the_embedded_store_uses_the_cursor_statements(services):
    assert isinstance(services.store, SqliteGenerationStore)
