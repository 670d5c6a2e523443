"""The limits are cluster-wide in the scale-out mode: two API replicas sharing PostgreSQL
and Redis (the `limits` library's Redis storage, and the Redis stream slots) count one
user's requests, streams and sign-in failures together."""

import asyncio
import time

import pytest
import websockets

from auth.security import create_token
from models.db import User
from tests.scaleout_support import REDIS_URL, SECRET, clean_redis, create_database, drop_database, unique
from tests.support import WS, Server, make_settings, new_session, register


@pytest.fixture
async def replicas(tmp_path):
    name, prefix = unique("limits"), unique("lim") + ":"
    url = await create_database(name)
    servers = []
    try:
        for tag in ("a", "b"):
            settings = make_settings(
                tmp_path / tag,
                database_url=url,
                redis_url=REDIS_URL,
                redis_key_prefix=prefix,
                secret_key=SECRET,
                user_requests_per_minute=8,
                user_max_open_streams=1,
                login_max_failures=2,
                user_max_running_generations=1,
                time_between_chunks=0.3,
            )
            servers.append(await Server(settings).start())
        yield servers
    finally:
        for server in servers:
            await server.stop()
        await drop_database(name)
        await clean_redis(prefix)


async def test_limits_hold_across_replicas(replicas):
    a, b = replicas
    async with a.client() as ca:
        token = await register(ca, "shared")
    async with a.client(token) as ca, b.client(token) as cb:
        await new_session(ca, token)  # request 1
        codes = [(await c.get("/sessions")).status_code for c in (ca, cb, ca, cb, ca, cb)]  # 2..7
        assert codes == [200] * 6
        assert (await cb.get("/sessions")).status_code == 200  # 8: the limit, counted on both
        r = await ca.get("/sessions")
        assert r.status_code == 429 and r.json()["code"] == "too_many_requests"
        assert (await cb.get("/sessions")).status_code == 429

    async with b.client() as cb:
        for _ in range(2):
            await cb.post("/token", data={"username": "victim", "password": "wrong-guess-1"})
    async with a.client() as ca:  # the failures seen by B count on A
        r = await ca.post("/token", data={"username": "victim", "password": "wrong-guess-2"})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"


async def test_open_streams_are_counted_across_replicas(replicas):
    a, b = replicas
    async with a.client() as ca:
        token = await register(ca, "streamer")
        sid = await new_session(ca, token)
    async with WS.connect(f"{a.ws_base}/ws/{sid}", token) as ws:
        await ws.send({"type": "ping"})
        assert (await ws.recv())["type"] == "pong"
        async with websockets.connect(
            f"{b.ws_base}/ws/{sid}", additional_headers={"Authorization": f"Bearer {token}"}
        ) as other:
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(other.recv(), 5)
            assert closed.value.rcvd.code == 4429
    deadline = time.monotonic() + 10  # A released its slot: B accepts one now
    while True:
        async with WS.connect(f"{b.ws_base}/ws/{sid}", token) as ws:
            await ws.send({"type": "ping"})
            try:
                if (await ws.recv())["type"] == "pong":
                    break
            except websockets.ConnectionClosed:
                pass
        assert time.monotonic() < deadline, "the slot held on replica A was never released"
        await asyncio.sleep(0.1)


async def test_answers_running_are_counted_across_replicas(replicas):
    a, b = replicas
    async with a.client() as ca:
        token = await register(ca, "busy")
    async with a.client(token) as ca, b.client(token) as cb:
        first, second = await new_session(ca, token), await new_session(cb, token)
        r = await ca.post("/chat", json={"session_id": first, "message": "long one", "background": True})
        assert r.status_code == 202
        r = await cb.post("/chat", json={"session_id": second, "message": "elsewhere", "background": True})
        assert r.status_code == 429 and r.json()["code"] == "too_many_running"
        r = await cb.post("/chat", json={"session_id": first, "message": "behind it", "background": True})
        assert r.status_code == 202 and r.json()["position"] == 1


async def test_a_redis_outage_fails_open_for_limits_and_closed_for_sign_in(tmp_path):
    """Redis unreachable: requests and streams go on unlimited (a warning is logged), while
    sign-ins are refused with 503 rather than let guessing run uncounted. Never a 500."""
    settings = make_settings(tmp_path, redis_url="redis://127.0.0.1:1/0", secret_key=SECRET)
    server = await Server(settings).start()
    try:
        async with server.services.db.sessionmaker() as db:  # an account, without a sign-in
            user = User(username="outage", username_normalized="outage", password_hash="x")
            db.add(user)
            await db.commit()
        async with server.client(create_token(server.services.tokens, user.id)) as c:
            r = await c.get("/sessions")
            assert r.status_code == 200
            r = await c.post("/token", data={"username": "outage", "password": "whatever-it-is"})
            assert r.status_code == 503 and r.json()["code"] == "limiter_unavailable"
    finally:
        await server.stop()
