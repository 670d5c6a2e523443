"""An API key authenticates wherever a JWT does, and stops at once when revoked or expired
(issue 13.1): REST, SSE, and the WebSocket's header, subprotocol and first-frame auth."""

import asyncio
import json
from datetime import UTC, datetime, timedelta

import pytest
import websockets

from tests.support import WS, create_key, new_session, read_sse, register, set_key_column, text_of


async def _close_code(conn, timeout: float = 5) -> int:
    """The close code, after any frames still on their way."""
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                await conn.recv()
    return info.value.rcvd.code


async def test_rest_and_sse_with_a_key(server, client, token):
    key = (await create_key(client, token))["key"]
    async with server.client(key) as c:
        sid = await new_session(c, key)
        r = await c.post("/chat", json={"session_id": sid, "message": "sync via key"})
        assert r.status_code == 200 and "sync via key" in r.json()["response"]
        async with c.stream(
            "POST",
            "/chat",
            json={"session_id": sid, "message": "stream via key"},
            headers={"Accept": "text/event-stream"},
        ) as r:
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
            events = await read_sse(r)
        assert events[-1]["type"] == "done" and "stream via key" in text_of(events)
        gen = events[-1]["generation_id"]
        async with c.stream("GET", f"/generations/{gen}/events") as r:
            assert [e["type"] for e in await read_sse(r)][-1] == "done"
        assert [s["session_id"] for s in (await c.get("/sessions")).json()["items"]] == [sid]


@pytest.mark.parametrize("style", ["header", "subprotocol", "first_frame"])
async def test_each_websocket_auth_style_with_a_key(server, client, token, style):
    key = (await create_key(client, token))["key"]
    sid = await new_session(client, token)
    url = f"{server.ws_base}/ws/{sid}"
    kwargs = {
        "header": {"additional_headers": {"Authorization": f"Bearer {key}"}},
        "subprotocol": {"subprotocols": ["bearer", key]},
        "first_frame": {},
    }[style]
    async with websockets.connect(url, **kwargs) as conn:
        if style == "subprotocol":
            assert conn.subprotocol == "bearer"
        if style == "first_frame":
            await conn.send(json.dumps({"type": "auth", "token": key}))
        ws = WS(conn)
        await ws.send({"type": "message", "content": f"hi via {style}"})
        accepted = await ws.recv()
        assert accepted["type"] == "accepted", accepted
        assert f"hi via {style}" in text_of(await ws.until_done(accepted["generation_id"]))


async def test_revoked_key_is_refused_at_once_everywhere(server, client, auth, token):
    created = await create_key(client, token)
    key = created["key"]
    sid = await new_session(client, token)
    assert (await client.get("/sessions", headers={"Authorization": f"Bearer {key}"})).status_code == 200
    assert (await auth.delete(f"/api-keys/{created['id']}")).status_code == 204
    for method, path, body in (
        ("GET", "/sessions", None),
        ("POST", "/chat", {"session_id": sid, "message": "x"}),
        ("GET", f"/sessions/{sid}", None),
        ("GET", "/api-keys", None),
    ):
        r = await client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_api_key", (path, r.text)
        assert r.headers["www-authenticate"] == "Bearer"
    async with websockets.connect(
        f"{server.ws_base}/ws/{sid}", additional_headers={"Authorization": f"Bearer {key}"}
    ) as conn:
        assert await _close_code(conn) == 4401
    async with websockets.connect(f"{server.ws_base}/ws/{sid}") as conn:
        await conn.send(json.dumps({"type": "auth", "token": key}))
        assert await _close_code(conn) == 4401


async def test_forged_keys_are_refused(server, client, token):
    real = (await create_key(client, token))["key"]
    forged = [
        real[:-1] + ("A" if real[-1] != "A" else "B"),
        real + "x",
        "sk-chat-",
        "sk-chat-" + "a" * 56,
        real.replace("sk-chat-", "sk-chat-" + "a", 1)[: len(real)],
    ]
    for bad in forged:
        r = await client.get("/sessions", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_api_key", bad


async def test_expired_key_is_refused(server, client, token):
    created = await create_key(client, token, expires_in_days=1)
    sid = await new_session(client, token)
    await set_key_column(server, created["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    r = await client.get("/sessions", headers={"Authorization": f"Bearer {created['key']}"})
    assert r.status_code == 401 and r.json()["code"] == "api_key_expired"
    async with websockets.connect(f"{server.ws_base}/ws/{sid}", subprotocols=["bearer", created["key"]]) as conn:
        assert await _close_code(conn) == 4401


async def test_socket_of_a_revoked_key_closes_before_another_generation(server, client, auth, token):
    created = await create_key(client, token)
    sid = await new_session(client, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", created["key"]) as ws:
        await ws.send({"type": "message", "content": "first"})
        accepted = await ws.recv()
        await ws.until_done(accepted["generation_id"])
        assert (await auth.delete(f"/api-keys/{created['id']}")).status_code == 204
        await ws.send({"type": "message", "content": "second, after the revocation"})
        assert await _close_code(ws.conn) == 4401
    history = (await auth.get(f"/sessions/{sid}")).json()["history"]
    assert [m["content"] for m in history if m["role"] == "user"] == ["first"]


async def test_other_users_key_cannot_open_my_session(server, client, token):
    sid = await new_session(client, token)
    other = (await create_key(client, await register(client, "mallory")))["key"]
    async with WS.connect(f"{server.ws_base}/ws/{sid}", other) as ws:
        assert await _close_code(ws.conn) == 4404
