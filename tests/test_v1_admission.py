"""The OpenAI-compatible routes are held to the same account state, budgets and per-user
limits as POST /chat and the WebSocket, whatever the credential (JWT or API key); and a
socket whose account is disabled elsewhere (another replica, the CLI) closes at its next
frame. Real HTTP and sockets against a real server."""

import pytest
import websockets
from sqlalchemy import update

from models.db import User
from tests.support import WS, create_key, new_session, register
from tests.test_usage_admin import ops  # noqa: F401 (the fixture: INITIAL_USER is the admin)

CHAT = {"model": "offline/simulated", "messages": [{"role": "user", "content": "hi"}]}


async def user_id_of(root, name: str) -> str:
    return next(u["id"] for u in (await root.get("/admin/users")).json()["users"] if u["username"] == name)


async def test_a_disabled_account_is_refused_on_v1_with_a_token_or_a_key(ops):  # noqa: F811
    async with ops.client() as c:
        token = await register(c, "vic")
        key = (await create_key(c, token))["key"]
    async with ops.client(ops.admin) as root:
        uid = await user_id_of(root, "vic")
        assert (await root.patch(f"/admin/users/{uid}", json={"disabled": True})).status_code == 200
    for credential in (token, key):
        async with ops.client(credential) as a:
            for method, path, body in (
                ("POST", "/v1/chat/completions", CHAT),
                ("POST", "/v1/responses", {"model": "offline/simulated", "input": "hi"}),
                ("GET", "/api-keys", None),
            ):
                r = await a.request(method, path, json=body)
                assert r.status_code == 403, (path, r.text)
                code = r.json()["error"]["code"] if path.startswith("/v1") else r.json()["code"]
                assert code == "user_disabled"


async def test_v1_calls_count_against_the_users_limits(ops):  # noqa: F811
    async with ops.client() as c:
        token = await register(c, "lou")
    async with ops.client(ops.admin) as root:
        uid = await user_id_of(root, "lou")
        r = await root.put(f"/admin/users/{uid}/limits", json={"sessions_per_hour": 1})
        assert r.status_code == 200
    async with ops.client(token) as a:
        assert (await a.post("/v1/chat/completions", json=CHAT)).status_code == 200
        r = await a.post("/v1/chat/completions", json=CHAT)  # each call opens a session of its own
        assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_sessions"
        assert "retry-after" in r.headers


async def test_a_socket_closes_when_its_account_is_disabled_elsewhere(ops):  # noqa: F811
    async with ops.client() as c:
        token = await register(c, "wes")
    async with ops.client(token) as a:
        sid = await new_session(a, token)
        async with WS.connect(f"{ops.ws_base}/ws/{sid}", token) as ws:
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"
            # As another replica or the CLI would: the row changes, no socket here is told.
            stmt = update(User.__table__).where(User.__table__.c.username == "wes").values(disabled=True)
            await ops.services.db.run(lambda conn: conn.execute(stmt))
            await ws.send({"type": "ping"})
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await ws.recv(timeout=5)
            assert closed.value.rcvd.code == 4403
