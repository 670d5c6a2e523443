"""Auth edge cases (issue 15.3): duplicate Authorization headers, and sockets closed with
4401 when the credential they opened with ends."""

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
import websockets

from tests.support import WS, create_key, new_session, register, set_key_column


async def _close(conn, timeout: float) -> websockets.ConnectionClosed:
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                await conn.recv()
    return info.value


def _short_token(server, user_id: str, seconds: float) -> str:
    cfg = server.services.tokens
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "nbf": now, "exp": now + seconds, "iss": cfg.issuer, "aud": cfg.audience}
    return jwt.encode(claims, cfg.secret_key, algorithm=cfg.algorithm)


async def test_two_authorization_headers_are_refused(server, client, token):
    other = await register(client, "bob")
    key = (await create_key(client, token))["key"]
    for second in (other, token, key):
        headers = httpx.Headers([("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {second}")])
        r = await client.get("/sessions", headers=headers)
        assert r.status_code == 401 and r.json()["code"] == "duplicate_authorization", r.text
    sid = await new_session(client, token)
    two = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {other}")]
    async with websockets.connect(f"{server.ws_base}/ws/{sid}", additional_headers=two) as conn:
        assert (await _close(conn, 5)).rcvd.code == 4401
    one = await client.get("/sessions", headers={"Authorization": f"Bearer {token}"})
    assert one.status_code == 200


async def test_socket_closes_4401_when_its_jwt_expires(server, client, token):
    sid = await new_session(client, token)
    user_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    short = _short_token(server, user_id, 2)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", short) as ws:
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"type": "pong"}  # working before the expiry
        closed = await _close(ws.conn, 10)  # nothing sent: the server's timer closes it
    assert closed.rcvd.code == 4401 and closed.rcvd.reason == "token expired"
    assert time.time() >= jwt.decode(short, options={"verify_signature": False})["exp"]


async def test_socket_closes_4401_when_its_key_expires(server, client, token):
    created = await create_key(client, token, expires_in_days=1)
    await set_key_column(server, created["id"], expires_at=datetime.now(UTC) + timedelta(seconds=2))
    sid = await new_session(client, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", created["key"]) as ws:
        await ws.send({"type": "ping"})
        assert await ws.recv() == {"type": "pong"}
        assert (await _close(ws.conn, 10)).rcvd.code == 4401


async def test_a_long_lived_token_keeps_its_socket(server, client, token):
    sid = await new_session(client, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        for _ in range(3):
            await ws.send({"type": "ping"})
            assert await ws.recv() == {"type": "pong"}


async def test_close_user_ends_only_that_users_sockets(server, client, token):
    bob = await register(client, "bob")
    mine, theirs = await new_session(client, token), await new_session(client, bob)
    alice_id = jwt.decode(token, options={"verify_signature": False})["sub"]
    async with (
        WS.connect(f"{server.ws_base}/ws/{mine}", token) as a,
        WS.connect(f"{server.ws_base}/ws/{theirs}", bob) as b,
    ):
        for ws in (a, b):  # both counted as open before closing
            await ws.send({"type": "ping"})
            assert await ws.recv() == {"type": "pong"}
        assert await server.app.state.connections.close_user(alice_id, "user disabled") == 1
        closed = await _close(a.conn, 5)
        assert closed.rcvd.code == 4401 and closed.rcvd.reason == "user disabled"
        await b.send({"type": "ping"})
        assert await b.recv() == {"type": "pong"}
