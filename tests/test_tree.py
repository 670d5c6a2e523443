"""A conversation is a tree (services/tree.py): regenerate, edit, continue, retry and switch,
over REST, with the prompt the fake upstream was sent following the active branch only."""

from typing import Any, Protocol

import httpx

from fakeupstream import FakeUpstream
from services.generations.store_rules import CONTINUE_PROMPT
from tests.support import WS, Server, new_session, read_sse, register


class Upstream(Protocol):  # conftest's `upstream`: a Server with its user's token
    token: str
    ws_base: str


async def behave(fake: FakeUpstream, **options: Any) -> None:
    async with httpx.AsyncClient() as c:
        await c.post(f"{fake.base_url}/_fake/behaviour", json=options)


async def sent(fake: FakeUpstream) -> list[dict[str, str]]:
    async with httpx.AsyncClient() as c:
        stats = (await c.get(f"{fake.base_url}/_fake/stats")).json()
    messages: list[dict[str, str]] = stats["last_request"]["messages"]
    return messages


async def finish(client: httpx.AsyncClient, generation_id: str) -> dict[str, Any]:
    """Follows the answer to its done frame; returns that frame."""
    async with client.stream("GET", f"/stream/{generation_id}") as r:
        frames = await read_sse(r)
    last: dict[str, Any] = frames[-1]
    return last


async def say(client: httpx.AsyncClient, sid: str, text: str) -> dict[str, Any]:
    r = await client.post("/chat", json={"session_id": sid, "message": text})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


async def branch(client: httpx.AsyncClient, sid: str, mid: str, op: str, **body: str) -> dict[str, Any]:
    r = await client.post(f"/sessions/{sid}/messages/{mid}/{op}", json=body or None)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    assert (await finish(client, out["generation_id"]))["type"] == "done"
    return out


async def path(client: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    history: list[dict[str, Any]] = (await client.get(f"/sessions/{sid}")).json()["history"]
    return history


async def test_regenerate_keeps_both_answers_and_the_model_sees_one(
    upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sid = await new_session(up, upstream.token)
    await behave(fake, n=2)
    first = await say(up, sid, "Hello")
    await behave(fake, text="another answer")
    again = await branch(up, sid, first["generation_id"], "regenerate")
    assert await sent(fake) == [{"role": "user", "content": "Hello"}]  # not the first answer
    history = await path(up, sid)
    assert [(m["role"], m["content"]) for m in history] == [("user", "Hello"), ("assistant", "another answer")]
    assert history[1]["id"] == again["generation_id"] == history[0]["generation_id"]
    assert history[1]["versions"] == [first["generation_id"], again["generation_id"]]
    assert history[1]["parent_id"] == history[0]["id"] and history[1]["model"] == "openai/fake-model"
    # Switching back is stored: a fresh read (another device) shows the first answer.
    r = await up.put(f"/sessions/{sid}/active", json={"message_id": first["generation_id"]})
    assert r.status_code == 200 and r.json()["active_leaf_id"] == first["generation_id"]
    assert [m["content"] for m in await path(up, sid)] == ["Hello", "t0 t1 "]
    await say(up, sid, "And then?")
    assert await sent(fake) == [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "t0 t1 "},
        {"role": "user", "content": "And then?"},
    ]


async def test_edit_branches_from_the_message_and_keeps_the_old_branch(
    upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sid = await new_session(up, upstream.token)
    await behave(fake, n=1)
    a1 = await say(up, sid, "first")
    await say(up, sid, "second")
    old = await path(up, sid)
    edited = await branch(up, sid, old[0]["id"], "edit", content="first, edited")
    assert await sent(fake) == [{"role": "user", "content": "first, edited"}]
    history = await path(up, sid)
    assert [m["content"] for m in history] == ["first, edited", "t0 "]
    assert history[0]["versions"] == [old[0]["id"], history[0]["id"]] and history[0]["parent_id"] is None
    assert history[1]["id"] == edited["generation_id"]
    await say(up, sid, "third")  # the model sees the new branch only
    assert [m["content"] for m in await sent(fake)] == ["first, edited", "t0 ", "third"]
    # The old branch is whole: switching to the first version shows it to its end.
    await up.put(f"/sessions/{sid}/active", json={"message_id": old[0]["id"]})
    assert [m["id"] for m in await path(up, sid)] == [m["id"] for m in old]
    assert old[1]["id"] == a1["generation_id"]


async def test_continue_extends_an_answer_cut_short(
    upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sid = await new_session(up, upstream.token, max_tokens=3)
    await behave(fake, n=10)
    cut = await say(up, sid, "Tell me more")
    assert (cut["status"], cut["finish_reason"], cut["response"]) == ("incomplete", "length", "t0 t1 t2 ")
    more = await branch(up, sid, cut["generation_id"], "continue")
    assert await sent(fake) == [
        {"role": "user", "content": "Tell me more"},
        {"role": "assistant", "content": "t0 t1 t2 "},
        {"role": "user", "content": CONTINUE_PROMPT},
    ]
    history = await path(up, sid)
    assert [m["id"] for m in history][1:] == [cut["generation_id"], more["generation_id"]]
    assert history[2]["parent_id"] == cut["generation_id"] and history[2]["content"] == "t0 t1 t2 "
    await say(up, sid, "Thanks")  # the answer and its continuation are one turn for the model
    assert await sent(fake) == [
        {"role": "user", "content": "Tell me more"},
        {"role": "assistant", "content": "t0 t1 t2 t0 t1 t2 "},
        {"role": "user", "content": "Thanks"},
    ]


async def test_only_answers_cut_short_continue_and_running_ones_wait(
    upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sid = await new_session(up, upstream.token)
    await behave(fake, n=2)
    done = await say(up, sid, "Hi")
    user_id = (await path(up, sid))[0]["id"]
    r = await up.post(f"/sessions/{sid}/messages/{done['generation_id']}/continue")
    assert (r.status_code, r.json()["code"]) == (409, "not_continuable")
    r = await up.post(f"/sessions/{sid}/messages/{user_id}/regenerate")
    assert (r.status_code, r.json()["code"]) == (422, "not_an_answer")
    r = await up.post(f"/sessions/{sid}/messages/{done['generation_id']}/edit", json={"content": "x"})
    assert (r.status_code, r.json()["code"]) == (422, "not_a_user_message")
    r = await up.post(f"/sessions/{sid}/messages/{user_id}/edit", json={"content": "  "})
    assert (r.status_code, r.json()["code"]) == (422, "empty_message")
    await behave(fake, n=50, tps=20)
    slow = (await up.post("/chat", json={"session_id": sid, "message": "slow", "background": True})).json()
    r = await up.post(f"/sessions/{sid}/messages/{slow['generation_id']}/regenerate")
    assert (r.status_code, r.json()["code"]) == (409, "generation_active")
    await up.post(f"/generations/{slow['generation_id']}/cancel")
    assert (await finish(up, slow["generation_id"]))["status"] == "cancelled"


async def test_retry_a_failed_answer(upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream) -> None:
    sid = await new_session(up, upstream.token)
    await behave(fake, status=400)
    failed = await say(up, sid, "Try this")
    assert failed["status"] == "failed"
    await behave(fake, n=2)
    retry = await branch(up, sid, failed["generation_id"], "regenerate")
    history = await path(up, sid)
    assert (history[-1]["id"], history[-1]["status"], history[-1]["content"]) == (
        retry["generation_id"],
        "completed",
        "t0 t1 ",
    )
    assert history[-1]["versions"] == [failed["generation_id"], retry["generation_id"]]


async def test_another_users_session_and_messages_are_missing(
    server: Server, auth: httpx.AsyncClient, token: str, client: httpx.AsyncClient
) -> None:
    sid = await new_session(auth, token)
    answer = (await auth.post("/chat", json={"session_id": sid, "message": "mine"})).json()["generation_id"]
    mallory = await register(client, "mallory")
    other = {"Authorization": f"Bearer {mallory}"}
    for op, body in (("regenerate", None), ("continue", None), ("edit", {"content": "x"})):
        r = await client.post(f"/sessions/{sid}/messages/{answer}/{op}", json=body, headers=other)
        assert (r.status_code, r.json()["code"]) == (404, "session_not_found"), op
    r = await client.put(f"/sessions/{sid}/active", json={"message_id": answer}, headers=other)
    assert (r.status_code, r.json()["code"]) == (404, "session_not_found")
    # Her own message in a session it is not part of: missing there too.
    mine = await new_session(client, mallory)
    r = await client.put(f"/sessions/{mine}/active", json={"message_id": answer}, headers=other)
    assert (r.status_code, r.json()["code"]) == (404, "message_not_found")
    r = await client.post(f"/sessions/{mine}/messages/{answer}/regenerate", headers=other)
    assert (r.status_code, r.json()["code"]) == (404, "message_not_found")
    assert len((await auth.get(f"/sessions/{sid}")).json()["history"]) == 2  # nothing was added


async def test_socket_frames_regenerate_edit_continue_and_switch(
    upstream: Upstream, up: httpx.AsyncClient, fake: FakeUpstream
) -> None:
    sid = await new_session(up, upstream.token, max_tokens=2)
    await behave(fake, n=5)
    cut = await say(up, sid, "Go")
    user_id = (await path(up, sid))[0]["id"]
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send({"type": "continue", "message_id": cut["generation_id"]})
        accepted = await ws.recv()
        assert accepted["type"] == "accepted" and accepted["session_id"] == sid
        assert (await ws.until_done(accepted["generation_id"]))[-1]["finish_reason"] == "length"
        assert (await sent(fake))[-1] == {"role": "user", "content": CONTINUE_PROMPT}
        await ws.send({"type": "regenerate", "message_id": cut["generation_id"]})
        regen = await ws.recv()
        await ws.until_done(regen["generation_id"])
        await ws.send({"type": "edit", "message_id": user_id.lower(), "content": "Go on", "client_msg_id": "e-1"})
        edit = await ws.recv()
        assert (edit["type"], edit["client_msg_id"]) == ("accepted", "e-1")
        await ws.until_done(edit["generation_id"])
        assert await sent(fake) == [{"role": "user", "content": "Go on"}]
        await ws.send({"type": "switch", "message_id": user_id})
        switched = await ws.recv()
        # Down the newest child at each fork: the regenerated answer, not the continued one.
        assert switched == {"type": "switched", "session_id": sid, "active_leaf_id": regen["generation_id"]}
        await ws.send({"type": "regenerate", "message_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"})
        error = await ws.recv()
        assert (error["type"], error["code"]) == ("error", "message_not_found")
        await ws.send({"type": "switch", "message_id": "nope"})
        assert (await ws.recv())["code"] == "invalid_id"
    history = await path(up, sid)
    assert [m["id"] for m in history] == [user_id, regen["generation_id"]]
    assert history[1]["versions"] == [cut["generation_id"], regen["generation_id"]]
