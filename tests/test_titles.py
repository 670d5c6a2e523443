"""Automatic titles: asked of the model after the first answer (against the fake upstream over
real HTTP), the first words for the offline model, and a title the user set is never replaced."""

import asyncio

import httpx
import pytest

from config import Settings
from services.titles import clean

QUESTION = "How do I grow kiwifruit on a balcony in a cold climate?"


@pytest.fixture
def upstream_settings(upstream_settings: Settings) -> Settings:
    return upstream_settings.model_copy(update={"auto_title": True})  # off in tests/support.py


async def _send(c, sid: str, text: str) -> dict:
    r = await c.post("/chat", json={"session_id": sid, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


async def _title(c, sid: str) -> str:
    return (await c.get(f"/sessions/{sid}")).json()["title"]


async def test_the_model_titles_a_chat_after_its_first_answer(upstream, up, fake):
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"text": '"Balcony kiwifruit in the cold."\nMore'})
    sid = (await up.post("/set-llm", json={})).json()["session_id"]
    await _send(up, sid, QUESTION)
    await upstream.services.titles.idle()
    assert await _title(up, sid) == "Balcony kiwifruit in the cold"
    asked = httpx.get(f"{fake.base_url}/_fake/stats").json()["last_request"]
    assert (
        asked["max_tokens"] == upstream.settings.auto_title_max_tokens
        or asked.get("max_completion_tokens") == upstream.settings.auto_title_max_tokens
    )
    assert asked["messages"][0]["content"] == QUESTION and "title" in asked["messages"][-1]["content"]
    history = (await up.get(f"/sessions/{sid}")).json()["history"]
    assert [m["role"] for m in history] == ["user", "assistant"]  # the title request is no message

    # Only the first answer: a later one is not asked about (an emptied title takes the next
    # message's first words, as before).
    await up.patch(f"/sessions/{sid}", json={"title": ""})
    await _send(up, sid, "And in summer?")
    await upstream.services.titles.idle()
    assert await _title(up, sid) == "And in summer?"


async def test_a_title_the_user_set_is_kept(upstream, up, fake):
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"text": "Model title"})
    mine = (await up.post("/set-llm", json={"title": "My plants"})).json()["session_id"]
    await _send(up, mine, QUESTION)
    renamed = (await up.post("/set-llm", json={})).json()["session_id"]
    await _send(up, renamed, "short one")
    await upstream.services.titles.idle()
    assert await _title(up, mine) == "My plants"
    assert await _title(up, renamed) == "Model title"
    # Renamed by the user after the first words were set: the model's title does not win.
    third = (await up.post("/set-llm", json={})).json()["session_id"]
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"text": "Late title", "ttft": 0.5})
    sending = asyncio.create_task(_send(up, third, "hello there"))
    while not (await up.get(f"/sessions/{third}")).json()["history"]:  # the message is stored
        await asyncio.sleep(0.01)
    await up.patch(f"/sessions/{third}", json={"title": "Renamed meanwhile"})
    await sending
    await upstream.services.titles.idle()
    assert await _title(up, third) == "Renamed meanwhile"


async def test_a_failing_title_request_is_ignored(upstream, up, fake):
    upstream.services.settings.auto_title = False  # the answer first, without a title
    sid = (await up.post("/set-llm", json={})).json()["session_id"]
    answer = await _send(up, sid, QUESTION)
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"status": 500})
    titles = upstream.services.titles
    await titles._guarded(answer["generation_id"], "openai/fake-model", answer["response"])
    assert await _title(up, sid) == QUESTION  # the first words stand


async def test_offline_model_keeps_the_first_words(auth, server):
    sid = (await auth.post("/set-llm", json={})).json()["session_id"]
    await _send(auth, sid, "  Plan   a three-day trip to Lisbon with a focus on food and old tram lines please ")
    await server.services.titles.idle()
    assert await _title(auth, sid) == "Plan a three-day trip to Lisbon with a focus on food and old…"


def test_clean():
    assert clean('Title: "Kiwis on balconies."\nextra') == "Kiwis on balconies"
    assert clean("\n\n  **Lisbon trip**  ") == "Lisbon trip"
    assert clean("   ") == ""
