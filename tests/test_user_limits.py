"""Per-user resource limits (issues 15.7 and 16.5), over real HTTP and WebSockets: requests
per minute, sessions per hour, queued and running answers, open streams across WebSocket
and SSE, sign-ups per address, and an operator's per-user override."""

import asyncio
import time

import jwt
import pytest
import websockets

from services.errors import InvalidInput, NotFound
from tests.support import PASSWORD, WS, Server, make_settings, new_session, register


async def _closed_with(conn, timeout=5) -> int:
    with pytest.raises(websockets.ConnectionClosed) as info:
        for _ in range(3):
            await asyncio.wait_for(conn.recv(), timeout)
    return info.value.rcvd.code


def _refused(r, code: str, limit: int) -> None:
    assert r.status_code == 429 and r.json()["code"] == code, r.text
    assert r.json()["detail"] and int(r.headers["Retry-After"]) >= 1
    assert r.headers["X-RateLimit-Limit"] == str(limit) and r.headers["X-RateLimit-Remaining"] == "0"
    assert int(r.headers["X-RateLimit-Reset"]) >= 1


@pytest.fixture
async def limited(tmp_path, request):
    server = await Server(make_settings(tmp_path, **request.param)).start()
    async with server.client() as c:
        server.token = await register(c, "lim")
    yield server
    await server.stop()


def _background(sid: str, text: str = "hello") -> dict:
    return {"session_id": sid, "message": text, "background": True}


@pytest.mark.parametrize("limited", [{"user_requests_per_minute": 5}], indirect=True)
async def test_requests_per_minute(limited):
    async with limited.client(limited.token) as c:
        assert [(await c.get("/sessions")).status_code for _ in range(5)] == [200] * 5
        _refused(await c.get("/sessions"), "too_many_requests", 5)
        async with WS.connect(f"{limited.ws_base}/ws", limited.token) as ws:
            assert await _closed_with(ws.conn) == 4429
        other = await register(c, "other")
        assert (await c.get("/sessions", headers={"Authorization": f"Bearer {other}"})).status_code == 200


@pytest.mark.parametrize("limited", [{"user_sessions_per_hour": 2}], indirect=True)
async def test_sessions_per_hour(limited):
    async with limited.client(limited.token) as c:
        await new_session(c, limited.token)
        await new_session(c, limited.token)
        _refused(await c.post("/set-llm", json={}), "too_many_sessions", 2)
        _refused(await c.post("/chat", json={"message": "new one"}), "too_many_sessions", 2)
        async with WS.connect(f"{limited.ws_base}/ws", limited.token) as ws:
            assert await _closed_with(ws.conn) == 4429
        assert (await c.get("/sessions")).json()["total"] == 2


@pytest.mark.parametrize("limited", [{"user_max_queued_generations": 3, "time_between_chunks": 0.3}], indirect=True)
async def test_queued_answers_in_total(limited):
    async with limited.client(limited.token) as c:
        a, b = await new_session(c, limited.token), await new_session(c, limited.token)
        for sid in (a, a, b):
            assert (await c.post("/chat", json=_background(sid))).status_code == 202
        _refused(await c.post("/chat", json=_background(a, "one too many")), "too_many_queued", 3)
        history = (await c.get(f"/sessions/{a}")).json()["history"]
        assert "one too many" not in [m["content"] for m in history]  # refused: nothing stored
        async with WS.connect(f"{limited.ws_base}/ws/{b}", limited.token) as ws:
            await ws.send({"type": "message", "content": "over the socket"})
            frame = await ws.recv()
            assert frame["type"] == "error" and frame["code"] == "too_many_queued"
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"  # a refused message keeps the socket


@pytest.mark.parametrize("limited", [{"user_max_running_generations": 2, "time_between_chunks": 0.3}], indirect=True)
async def test_sessions_answering_at_once(limited):
    async with limited.client(limited.token) as c:
        a, b, third = [await new_session(c, limited.token) for _ in range(3)]
        for sid in (a, b):
            assert (await c.post("/chat", json=_background(sid))).status_code == 202
        _refused(await c.post("/chat", json=_background(third)), "too_many_running", 2)
        r = await c.post("/chat", json=_background(a, "queued behind the first"))
        assert r.status_code == 202 and r.json()["position"] == 1  # a busy session still queues


@pytest.mark.parametrize("limited", [{"user_max_open_streams": 2, "time_between_chunks": 0.3}], indirect=True)
async def test_open_streams_across_websocket_and_sse(limited):
    async with limited.client(limited.token) as c:
        sid = await new_session(c, limited.token)
        gen = (await c.post("/chat", json=_background(sid))).json()["generation_id"]
        async with WS.connect(f"{limited.ws_base}/ws/{sid}", limited.token) as ws:
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"
            async with c.stream("GET", f"/generations/{gen}/events") as sse:
                assert sse.status_code == 200
                _refused(await c.get(f"/stream/{gen}"), "too_many_streams", 2)
                _refused(
                    await c.post("/chat", json={"session_id": sid, "message": "s", "stream": True}),
                    "too_many_streams",
                    2,
                )
                async with WS.connect(f"{limited.ws_base}/ws/{sid}", limited.token) as third:
                    assert await _closed_with(third.conn) == 4429
        deadline = time.monotonic() + 10  # both slots come back once their streams end
        async with c.stream("GET", f"/generations/{gen}/events") as one:
            while True:
                async with c.stream("GET", f"/generations/{gen}/events") as two:
                    if two.status_code == 200:
                        break
                assert time.monotonic() < deadline, "stream slots were not released"
                await asyncio.sleep(0.1)
            assert one.status_code == 200


@pytest.mark.parametrize("limited", [{"registrations_per_hour_per_client": 3}], indirect=True)
async def test_sign_ups_per_address(limited):
    async with limited.client() as c:  # the fixture's own sign-up was the first
        for name in ("second", "third"):
            assert (await c.post("/users", json={"username": name, "password": PASSWORD})).status_code == 201
        _refused(await c.post("/users", json={"username": "fourth", "password": PASSWORD}), "too_many_registrations", 3)


@pytest.mark.parametrize("limited", [{"user_requests_per_minute": 3}], indirect=True)
async def test_an_operator_raises_one_users_limit(limited):
    limits = limited.services.limits
    async with limited.client(limited.token) as c:
        assert (await c.get("/sessions")).status_code == 200  # request 1 of 3
        user_id = jwt.decode(limited.token, options={"verify_signature": False})["sub"]
        assert await limits.set_user_limits(user_id, {"requests_per_minute": 50}) == {"requests_per_minute": 50}
        assert [(await c.get("/sessions")).status_code for _ in range(10)] == [200] * 10
        with pytest.raises(InvalidInput):
            await limits.set_user_limits(user_id, {"requests_per_minute": 0})
        with pytest.raises(InvalidInput):
            await limits.set_user_limits(user_id, {"tokens_per_second": 5})
        with pytest.raises(NotFound):
            await limits.set_user_limits("01J" + "0" * 23, {"requests_per_minute": 5})
        await limits.set_user_limits(user_id, None)  # back to the default, 3 a minute
        codes = [(await c.get("/sessions")).status_code for _ in range(3)]
        assert codes[-1] == 429
