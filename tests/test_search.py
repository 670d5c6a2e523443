"""Chat listing by last activity, and search across titles and message text: the same
checks against SQLite (FTS5) and, marked scaleout, PostgreSQL (full-text search)."""

import uuid

import pytest

from tests.scaleout_support import create_database, drop_database
from tests.support import Server, make_settings, register


async def _chat(c, title: str = "", *messages: str) -> str:
    sid = (await c.post("/set-llm", json={"title": title} if title else {})).json()["session_id"]
    for text in messages:
        r = await c.post("/chat", json={"session_id": sid, "message": text})
        assert r.status_code == 200, r.text
    return sid


async def _ids(c, q: str | None = None, **params) -> list[str]:
    r = await c.get("/sessions", params={**({"q": q} if q is not None else {}), **params})
    assert r.status_code == 200, r.text
    return [s["session_id"] for s in r.json()["items"]]


async def check_search(server: Server) -> None:
    async with server.client() as anon:
        alice, bob = await register(anon, "alice"), await register(anon, "bob")
    async with server.client(alice) as a, server.client(bob) as b:
        kiwi = await _chat(a, "", "Tell me about the kiwifruit harvest")
        trip = await _chat(a, "Holiday planning", "Where should I travel in spring?")
        empty = await _chat(a, "Recipes 100% (draft_1)")
        others = await _chat(b, "kiwi notes", "kiwifruit again")

        assert await _ids(a) == [empty, trip, kiwi]  # newest activity first
        assert await _ids(a, "kiwifruit") == [kiwi]  # message text, never another user's chat
        assert await _ids(a, "KIWI") == [kiwi]  # a word's start, any case
        assert await _ids(a, "harvest kiwi") == [kiwi]  # every word, in any order
        assert await _ids(a, "harvest spring") == []  # ... in one message
        assert await _ids(a, "holiday plan") == [trip]  # the title, as typed
        assert await _ids(a, "100%") == [empty]  # LIKE's wildcards are plain characters
        assert await _ids(a, "0% (d") == [empty]
        assert await _ids(a, "draft_") == [empty] and await _ids(a, "t_1") == [empty]
        assert await _ids(a, '"kiwi* (:') == [kiwi]  # FTS / tsquery syntax is plain text ...
        assert await _ids(a, "kiwi OR spring") == []  # ... and OR is one more word to find
        assert await _ids(b, "kiwi") == [others]

        r = await a.get("/sessions", params={"q": "kiwifruit"})
        hit = r.json()["items"][0]
        assert r.json()["total"] == 1 and "kiwifruit" in hit["snippet"].lower()
        assert hit["last_message_at"] is not None

        # A new message moves its chat to the top, with the time of that message.
        before = (await a.get("/sessions")).json()["items"]
        await a.post("/chat", json={"session_id": kiwi, "message": "one more about kiwis"})
        after = (await a.get("/sessions")).json()["items"]
        assert [s["session_id"] for s in after] == [kiwi, empty, trip]
        assert after[0]["last_message_at"] > before[2]["last_message_at"]
        assert next(s for s in after if s["session_id"] == empty)["last_message_at"] is None

        # Deleted messages leave the index with their chat.
        assert (await a.delete(f"/sessions/{kiwi}")).status_code == 204
        assert await _ids(a, "kiwifruit") == []
        assert await _ids(a, "kiwi", limit=1, offset=0) == []

        r = await a.get("/sessions", params={"q": "x" * 201})
        assert r.status_code == 422 and r.json()["code"] == "query_too_long"


async def test_search_and_activity_order_sqlite(tmp_path):
    server = await Server(make_settings(tmp_path)).start()
    try:
        await check_search(server)
    finally:
        await server.stop()


@pytest.mark.scaleout
async def test_search_and_activity_order_postgresql(tmp_path):
    name = f"search_{uuid.uuid4().hex[:8]}"  # other runs may share the server
    url = await create_database(name)
    server = await Server(make_settings(tmp_path, database_url=url)).start()
    try:
        await check_search(server)
    finally:
        await server.stop()
        await server.services.db.engine.dispose()
        await drop_database(name)
