"""WebSocket /ws/{session_id} against a real uvicorn server (PROTOCOL.md, WebSocket)."""

import asyncio
import json

import pytest
import websockets

from tests.support import WS, Server, make_settings, new_session, register, text_of


async def _closed_with(ws_conn, timeout=5) -> int:
    with pytest.raises(websockets.ConnectionClosed) as info:
        await asyncio.wait_for(ws_conn.recv(), timeout)
        await asyncio.wait_for(ws_conn.recv(), timeout)
    return info.value.rcvd.code


async def test_header_auth_plain_text_message_streams_chunks_and_done(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send("Hello over a socket")
        accepted = await ws.recv()
        assert accepted["type"] == "accepted" and accepted["session_id"] == sid and accepted["position"] == 0
        frames = await ws.until_done(accepted["generation_id"])
    chunks = [f for f in frames if f["type"] == "chunk"]
    assert [f["seq"] for f in chunks] == list(range(1, len(chunks) + 1))
    done = frames[-1]
    assert done["seq"] == len(chunks) + 1 and done["status"] == "completed" and done["finish_reason"] == "stop"
    assert set(done["usage"]) == {"prompt_tokens", "completion_tokens"}
    stored = (await auth.get(f"/generations/{accepted['generation_id']}")).json()
    assert stored["content"] == text_of(frames) and "Hello over a socket" in stored["content"]
    history = (await auth.get(f"/sessions/{sid}")).json()["history"]
    assert [m["role"] for m in history] == ["user", "assistant"]


async def test_subprotocol_auth_is_answered_with_bearer(server, auth, token):
    sid = await new_session(auth, token)
    async with websockets.connect(f"{server.ws_base}/ws/{sid}", subprotocols=["bearer", token]) as conn:
        assert conn.subprotocol == "bearer"
        await conn.send(json.dumps({"type": "ping"}))
        assert json.loads(await conn.recv()) == {"type": "pong"}


async def test_first_frame_auth(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", None) as ws:
        await ws.send({"type": "auth", "token": token})
        await ws.send({"type": "message", "content": "hi", "client_msg_id": "c-1"})
        accepted = await ws.recv()
        assert accepted["type"] == "accepted" and accepted["client_msg_id"] == "c-1"


async def test_auth_failures_close_4401(server, auth, token):
    sid = await new_session(auth, token)
    url = f"{server.ws_base}/ws/{sid}"
    async with websockets.connect(url, additional_headers={"Authorization": "Bearer forged.token.here"}) as conn:
        assert await _closed_with(conn) == 4401
    async with websockets.connect(f"{url}?token={token}") as conn:  # query tokens are refused by default
        await conn.send(json.dumps({"type": "message", "content": "hi"}))
        assert await _closed_with(conn) == 4401
    async with websockets.connect(url) as conn:
        await conn.send("hello without auth")
        assert await _closed_with(conn) == 4401


async def test_auth_frame_timeout(tmp_path):
    server = await Server(make_settings(tmp_path, ws_auth_timeout=0.3)).start()
    try:
        async with server.client() as c:
            token = await register(c, "erin")
            sid = await new_session(c, token)
        async with websockets.connect(f"{server.ws_base}/ws/{sid}") as conn:
            assert await _closed_with(conn) == 4401
    finally:
        await server.stop()


async def test_other_users_and_missing_sessions_close_4404(server, auth, token, client):
    sid = await new_session(auth, token)
    other = await register(client, "mallory")
    for path in (f"/ws/{sid}", "/ws/01ARZ3NDEKTSV4RRFFQ69G5FAV", "/ws/not-a-ulid"):
        async with websockets.connect(
            server.ws_base + path, additional_headers={"Authorization": f"Bearer {other}"}
        ) as conn:
            assert await _closed_with(conn) == 4404, path


async def test_two_messages_back_to_back_both_answered_in_order(tmp_path):
    # Paced, so the first answer is still running when the second message arrives.
    server = await Server(make_settings(tmp_path, time_between_chunks=0.01)).start()
    try:
        async with server.client() as auth:
            token = await register(auth, "alice")
            auth.headers["Authorization"] = f"Bearer {token}"
            await _two_messages(server, auth, token)
    finally:
        await server.stop()


async def _two_messages(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send({"type": "message", "content": "first"})
        await ws.send({"type": "message", "content": "second"})
        frames = []
        async with asyncio.timeout(20):
            while sum(f["type"] == "done" for f in frames) < 2:
                frames.append(await ws.recv())
    accepted = [f for f in frames if f["type"] == "accepted"]
    assert [a["position"] for a in accepted] == [0, 1]
    first, second = (a["generation_id"] for a in accepted)
    dones = [f["generation_id"] for f in frames if f["type"] == "done"]
    assert dones == [first, second]
    # The second answer saw the first exchange: the offline model numbers the user's messages.
    text2 = text_of([f for f in frames if f.get("generation_id") == second and f["type"] != "accepted"])
    assert "| your message number in this chat | 2 |" in text2
    assert (await auth.get(f"/sessions/{sid}")).json()["title"] == "first"  # the first message names it


async def test_messages_never_replace_a_title_the_user_chose(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send("one")
        await ws.until_done((await ws.recv())["generation_id"])
        await auth.patch(f"/sessions/{sid}", json={"title": "My own title"})
        await ws.send({"type": "message", "content": "two", "client_msg_id": "m2"})
        await ws.until_done((await ws.recv())["generation_id"])
        await ws.send({"type": "message", "content": "x" * 40_000, "client_msg_id": "m3"})
        refused = await ws.recv()
        assert refused["code"] == "message_too_long" and refused["client_msg_id"] == "m3"
    assert (await auth.get(f"/sessions/{sid}")).json()["title"] == "My own title"


async def test_bad_frames_get_error_frames_and_the_socket_stays_open(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        cases = [
            ("{not json", "invalid_json"),
            ({"type": "dance"}, "unknown_type"),
            ({"content": "x"}, "missing_field"),
            ({"type": "message"}, "missing_field"),
            ({"type": "resume", "generation_id": "nope", "after_seq": 0}, "invalid_id"),
            ({"type": "resume", "generation_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "after_seq": 0}, "generation_not_found"),
            ({"type": "resume", "generation_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "after_seq": -1}, "invalid_field"),
            ({"type": "message", "content": "   "}, "empty_message"),
            ({"type": "cancel"}, "nothing_to_cancel"),
        ]
        for frame, code in cases:
            await ws.send(frame)
            reply = await ws.recv()
            assert reply["type"] == "error" and reply["code"] == code, (frame, reply)
            assert reply["message"]
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"


async def test_size_limit_and_binary_frames_close(tmp_path):
    server = await Server(make_settings(tmp_path, ws_max_frame_bytes=2048, max_message_chars=1000)).start()
    try:
        async with server.client() as c:
            token = await register(c, "frank")
            sid = await new_session(c, token)
        url = f"{server.ws_base}/ws/{sid}"
        async with WS.connect(url, token) as ws:
            await ws.send({"type": "message", "content": "x" * 1500})
            assert (await ws.recv())["code"] == "message_too_long"
            await ws.send("y" * 5000)
            assert await _closed_with(ws.conn) == 1009
        async with WS.connect(url, token) as ws:
            await ws.conn.send(b"\x00\x01binary")
            assert await _closed_with(ws.conn) == 1003
    finally:
        await server.stop()


async def test_connection_limit_closes_4429(tmp_path):
    server = await Server(make_settings(tmp_path, ws_max_connections_per_user=2)).start()
    try:
        async with server.client() as c:
            token = await register(c, "gina")
            sid = await new_session(c, token)
        url = f"{server.ws_base}/ws/{sid}"
        async with WS.connect(url, token) as a, WS.connect(url, token) as b:
            await a.send({"type": "ping"}), await b.send({"type": "ping"})
            await a.recv(), await b.recv()
            async with WS.connect(url, token) as c3:
                assert await _closed_with(c3.conn) == 4429
    finally:
        await server.stop()


async def test_more_frames_a_minute_than_allowed_close_4429(tmp_path):
    server = await Server(make_settings(tmp_path, ws_max_messages_per_minute=3)).start()
    try:
        async with server.client() as c:
            token = await register(c, "hana")
            sid = await new_session(c, token)
        async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
            for _ in range(3):
                await ws.send({"type": "ping"})
                assert (await ws.recv())["type"] == "pong"
            await ws.send({"type": "ping"})
            assert await _closed_with(ws.conn) == 4429
    finally:
        await server.stop()


async def test_ws_without_session_id_opens_one(server, auth, token):
    async with WS.connect(f"{server.ws_base}/ws", token) as ws:
        first = await ws.recv()
        assert first["type"] == "session" and len(first["session_id"]) == 26
        await ws.send("hi")
        accepted = await ws.recv()
        assert accepted["session_id"] == first["session_id"]
        frames = await ws.until_done(accepted["generation_id"])
    assert frames[-1]["status"] == "completed"
    assert (await auth.get(f"/sessions/{first['session_id']}")).status_code == 200


async def test_patch_applies_to_the_next_message_on_an_open_socket(upstream, up, fake):
    """A socket opened before PATCH /sessions/{id} sends its next message with the new model,
    temperature, max_tokens and system prompt, and the done frame, the generation and the
    history name the model that answered."""
    sid = await new_session(up, upstream.token, model_name="openai/fake-model", temperature=0.3, max_tokens=64, top_p=1)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("before")
        first = (await ws.recv())["generation_id"]
        assert (await ws.until_done(first))[-1]["model"] == "openai/fake-model"
        r = await up.patch(
            f"/sessions/{sid}",
            json={
                "model_name": "openai/fake-model-2",
                "temperature": 1.5,
                "max_tokens": 200,
                "system_prompt": "Answer in French.",
            },
        )
        assert r.status_code == 200, r.text
        await ws.send("after")
        second = (await ws.recv())["generation_id"]
        done = (await ws.until_done(second))[-1]
    sent = (await up.get(f"{fake.base_url}/_fake/stats")).json()["last_request"]
    assert (sent["model"], sent["temperature"], sent["max_tokens"]) == ("fake-model-2", 1.5, 200)
    assert sent["messages"][0] == {"role": "system", "content": "Answer in French."}
    assert done["model"] == "openai/fake-model-2"
    assert (await up.get(f"/generations/{second}")).json()["model"] == "openai/fake-model-2"
    history = (await up.get(f"/sessions/{sid}")).json()["history"]
    assert [m.get("model") for m in history if m["role"] == "assistant"] == ["openai/fake-model", "openai/fake-model-2"]


async def test_rest_and_websocket_refuse_a_message_alike(server, auth, token):
    """One validator (SessionService.check_message): the same code and message on both."""
    sid = await new_session(auth, token)
    limit = server.settings.max_message_chars
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        for content, code in (("   ", "empty_message"), ("x" * (limit + 1), "message_too_long")):
            rest = await auth.post("/chat", json={"session_id": sid, "message": content})
            await ws.send({"type": "message", "content": content})
            frame = await ws.recv()
            assert rest.status_code == 422 and (rest.json()["code"], frame["code"]) == (code, code)
            assert frame["message"] == rest.json()["detail"]
