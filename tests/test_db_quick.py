"""Database.run_quick on SQLite: the per-message statements run on the event loop's own
connection, never wait there for a lock (the SQLite thread does), and that connection's
writes are checkpointed from the thread, so the WAL does not grow without bound."""

import asyncio
import os
import sqlite3

import pytest

import services.db as db_module
from services.container import build
from tests.scaleout_support import new_chat
from tests.support import make_settings


@pytest.fixture
async def services(tmp_path):
    api = build(make_settings(tmp_path))
    await api.start()
    yield api
    await api.stop()


def _db_file(services) -> str:
    return services.db.sync_engine.url.database


async def test_a_send_while_another_connection_writes_waits_for_it_instead_of_failing(services):
    chat = await new_chat(services, "offline/echo")
    other = sqlite3.connect(_db_file(services), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # a long write elsewhere: the database is locked
    try:
        send = asyncio.ensure_future(services.store.create_turn(chat, "hello", None))
        await asyncio.sleep(0.3)
        assert not send.done()  # waiting on the SQLite thread; the loop itself is free
        assert await services.db.run_quick(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()) == 1
    finally:
        other.execute("COMMIT")
        other.close()
    turn = await asyncio.wait_for(send, 10)
    assert turn.created and (await services.store.get(turn.generation_id)).status == "queued"


async def test_sends_on_the_loop_and_on_the_thread_still_count_each_other(services):
    """A send that fell back to the thread and one on the loop must not both see an idle
    session: the count and the insert happen under the write lock."""
    chat = await new_chat(services, "offline/echo")
    other = sqlite3.connect(_db_file(services), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    first = asyncio.ensure_future(services.store.create_turn(chat, "one", None, "w"))
    await asyncio.sleep(0.1)  # now queued on the thread behind the lock
    other.execute("COMMIT")
    other.close()
    second = await services.store.create_turn(chat, "two", None, "w")
    first = await first
    assert sorted([first.position, second.position]) == [0, 1]
    assert [t.job is not None for t in (first, second)].count(True) == 1


async def test_the_loops_writes_are_checkpointed_from_the_thread(services, monkeypatch):
    """The loop's connection never checkpoints (that may fsync). Without the thread doing
    it the WAL would grow with every send; with it, the WAL is reused from its start."""
    async def wal_bytes_after(writes: int) -> int:
        chat = await new_chat(services, "offline/echo")
        for i in range(writes):
            turn = await services.store.create_turn(chat, f"message {i}", None)
            await services.store.finalize(turn.generation_id, content="x" * 2000, last_seq=2, status="completed",
                                          finish_reason="stop", usage=None)
            await asyncio.sleep(0.001)  # as between real sends: the loop waits, the thread gets a turn
        await asyncio.sleep(0.3)  # a checkpoint scheduled by the last writes finishes
        return os.path.getsize(_db_file(services) + "-wal")

    truncate = lambda conn: conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # noqa: E731
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 10**9)
    await services.db.run(truncate)
    unchecked = await wal_bytes_after(150)
    monkeypatch.setattr(db_module, "CHECKPOINT_EVERY", 10)
    await services.db.run(truncate)
    checked = await wal_bytes_after(150)
    assert unchecked > 150 * 4096 and checked < unchecked / 4, (unchecked, checked)
