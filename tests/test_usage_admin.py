"""Usage per generation, budgets, the admin role and disabling users, over real HTTP and
sockets, and the admin CLI against the same database."""

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import httpx
import pytest
import websockets

from tests.support import PASSWORD, WS, Server, make_settings, new_session, register

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def ops(tmp_path):
    """A server whose INITIAL_USER is the admin; policy changes seen at once (TTL 0)."""
    settings = make_settings(tmp_path, initial_user="root", initial_password=PASSWORD, user_policy_ttl=0)
    srv = await Server(settings).start()
    async with srv.client() as c:
        r = await c.post("/token", data={"username": "root", "password": PASSWORD})
        srv.admin = r.json()["access_token"]
    yield srv
    await srv.stop()


async def chat(client, sid, text="hello"):
    r = await client.post("/chat", json={"session_id": sid, "message": text})
    assert r.status_code == 200, r.text
    return r.json()


async def test_usage_is_recorded_per_day_and_model(ops):
    async with ops.client() as c:
        token = await register(c, "ada")
    async with ops.client(token) as a:
        sid = await new_session(a, token)
        answers = [await chat(a, sid, f"q{i}") for i in range(2)]
        gen = (await a.get(f"/generations/{answers[0]['generation_id']}")).json()
        assert gen["usage"] == answers[0]["usage"]  # reported by the provider: no estimated flag
        r = await a.get("/usage")
        assert r.status_code == 200
        body = r.json()
        today = date.today().isoformat()  # the test machine runs in UTC
        assert body["to"] == today and body["usage"] == [
            {
                "day": today,
                "model": "offline/simulated",
                "generations": 2,
                "estimated_generations": 0,
                "prompt_tokens": sum(x["usage"]["prompt_tokens"] for x in answers),
                "completion_tokens": sum(x["usage"]["completion_tokens"] for x in answers),
            }
        ]
        assert body["total"]["generations"] == 2
        # deleting the session keeps what was spent
        assert (await a.delete(f"/sessions/{sid}")).status_code == 204
        assert (await a.get("/usage")).json()["total"] == body["total"]
        yesterday = (date.today() - timedelta(days=1)).isoformat()
        r = await a.get("/usage", params={"from": yesterday, "to": yesterday})
        assert r.json()["usage"] == [] and r.json()["total"]["generations"] == 0
        r = await a.get("/usage", params={"from": today, "to": yesterday})  # no day in between
        assert r.status_code == 200 and r.json()["usage"] == [] and r.json()["total"]["generations"] == 0
        r = await a.get("/usage", params={"from": "2000-01-01"})  # cut to USAGE_MAX_DAYS, and says so
        assert r.status_code == 200 and r.json()["from"] == (date.today() - timedelta(days=365)).isoformat()
        assert r.json()["total"] == body["total"]
        r = await a.get("/usage", params={"to": "0001-01-01"})
        assert r.status_code == 200 and r.json()["from"] == "0001-01-01"
        for bad in ({"to": "0"}, {"from": "2026-02-30"}, {"to": "20261202"}):
            r = await a.get("/usage", params=bad)
            assert r.status_code == 422 and r.json()["code"] == "validation_error", bad
        # an admin route is not for a user
        r = await a.get("/admin/usage")
        assert r.status_code == 403 and r.json()["code"] == "admin_required"
    async with ops.client(ops.admin) as root:
        rows = (await root.get("/admin/usage")).json()["usage"]
        assert [(x["username"], x["generations"]) for x in rows] == [("ada", 2)]


async def test_usage_estimated_when_the_provider_reports_none(upstream, up, fake):
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        (await c.post("/_fake/behaviour", json={"fail_times": 1, "status": 400, "n": 4})).raise_for_status()
    sid = await new_session(up, upstream.token)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("go")
        gen = (await ws.recv())["generation_id"]
        done = (await ws.until_done(gen))[-1]
    assert done["usage"]["estimated"] is True and done["usage"]["completion_tokens"] == 4
    assert (await up.get(f"/generations/{gen}")).json()["usage"] == done["usage"]
    rows = (await up.get("/usage")).json()["usage"]
    assert rows[0]["estimated_generations"] == 1 and rows[0]["model"] == "openai/fake-model"


async def test_budget_refuses_sends_but_never_cuts_a_running_answer(ops):
    async with ops.client() as c:
        token = await register(c, "bob")
    async with ops.client(ops.admin) as root:
        uid = next(u["id"] for u in (await root.get("/admin/users")).json()["users"] if u["username"] == "bob")
        r = await root.patch(f"/admin/users/{uid}", json={"daily_token_budget": 10})
        assert r.status_code == 200 and r.json()["daily_token_budget"] == 10
    async with ops.client(token) as a:
        sid = await new_session(a, token)
        first = await chat(a, sid)  # under budget when sent: answered in full, past the budget
        assert first["status"] == "completed" and sum(first["usage"].values()) > 10
        r = await a.post("/chat", json={"session_id": sid, "message": "again"})
        assert r.status_code == 429 and r.json()["code"] == "quota_exceeded"
        assert 1 <= int(r.headers["retry-after"]) <= 86_400
        async with WS.connect(f"{ops.ws_base}/ws/{sid}", token) as ws:  # reading still works
            await ws.send("over the socket")
            frame = await ws.recv()
            assert frame["type"] == "error" and frame["code"] == "quota_exceeded"
        history = (await a.get(f"/sessions/{sid}")).json()
        assert len(history["history"]) == 2  # nothing stored for the refused sends
    async with ops.client(ops.admin) as root:
        r = await root.patch(f"/admin/users/{uid}", json={"daily_token_budget": None})
        assert r.json()["daily_token_budget"] is None
    async with ops.client(token) as a:
        assert (await chat(a, sid, "lifted"))["status"] == "completed"


async def test_disabling_a_user_refuses_tokens_and_closes_sockets(ops):
    async with ops.client() as c:
        token = await register(c, "eve")
    async with ops.client(token) as a:
        sid = await new_session(a, token)
        async with ops.client(ops.admin) as root:
            users = (await root.get("/admin/users")).json()
            assert {u["username"]: u["role"] for u in users["users"]} == {"root": "admin", "eve": "user"}
            uid = next(u["id"] for u in users["users"] if u["username"] == "eve")
            async with WS.connect(f"{ops.ws_base}/ws/{sid}", token) as ws:
                r = await root.patch(f"/admin/users/{uid}", json={"disabled": True})
                assert r.status_code == 200 and r.json()["disabled"] is True
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await ws.recv(timeout=5)
                assert closed.value.rcvd.code == 4403
            for call in (a.get("/sessions"), a.post("/chat", json={"session_id": sid, "message": "x"})):
                r = await call
                assert r.status_code == 403 and r.json()["code"] == "user_disabled"
            r = await a.post("/token", data={"username": "eve", "password": PASSWORD})
            assert r.status_code == 403 and r.json()["code"] == "user_disabled"
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with WS.connect(f"{ops.ws_base}/ws/{sid}", token) as ws:
                    await ws.recv(timeout=5)
            assert closed.value.rcvd.code == 4403
            assert (await root.patch(f"/admin/users/{uid}", json={"disabled": False})).json()["disabled"] is False
        assert (await a.get("/sessions")).status_code == 200
        assert (await chat(a, sid))["status"] == "completed"


async def test_admin_routes_validate_and_hide_nothing_they_should_not(ops):
    async with ops.client(ops.admin) as root:
        missing = "01" + "A" * 24
        r = await root.patch(f"/admin/users/{missing}", json={"disabled": True})
        assert r.status_code == 404 and r.json()["code"] == "user_not_found"
        r = await root.patch(f"/admin/users/{missing}", json={"daily_token_budget": -1})
        assert r.status_code == 422
        r = await root.patch(f"/admin/users/{missing}", json={"role": "god"})
        assert r.status_code == 422
        r = await root.get("/admin/users", params={"limit": 0})
        assert r.status_code == 422
        body = (await root.get("/admin/users")).json()
        assert "password_hash" not in str(body) and body["total"] == 1
        me = body["users"][0]["id"]
        for change in ({"disabled": True}, {"role": "user"}):
            r = await root.patch(f"/admin/users/{me}", json=change)
            assert r.status_code == 409 and r.json()["code"] == "cannot_change_self"
    async with ops.client() as c:
        assert (await c.get("/admin/users")).status_code == 401


def cli(tmp_path, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "DATA_DIR": str(tmp_path / "data")}
    return subprocess.run(
        [sys.executable, "-m", "manage", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_manages_roles_budgets_and_accounts(tmp_path):
    assert cli(tmp_path, "create-user", "carol", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    assert cli(tmp_path, "set-role", "carol", "admin").returncode == 0
    r = cli(tmp_path, "set-budget", "carol", "--monthly", "5000")
    assert r.returncode == 0 and '"monthly_token_budget": 5000' in r.stdout and '"daily_token_budget": null' in r.stdout
    assert cli(tmp_path, "disable", "carol").returncode == 0
    r = cli(tmp_path, "disable", "nobody")
    assert r.returncode == 1 and "user not found" in r.stderr
    settings = make_settings(tmp_path, secret_key=None)
    srv = await Server(settings).start()
    try:
        async with srv.client() as c:
            r = await c.post("/token", data={"username": "carol", "password": PASSWORD})
            assert r.status_code == 403 and r.json()["code"] == "user_disabled"
            assert cli(tmp_path, "enable", "carol").returncode == 0
            token = (await c.post("/token", data={"username": "carol", "password": PASSWORD})).json()["access_token"]
        async with srv.client(token) as root:  # the CLI-made admin administers
            users = (await root.get("/admin/users")).json()["users"]
            assert users[0]["role"] == "admin" and users[0]["monthly_token_budget"] == 5000
    finally:
        await srv.stop()
    r = cli(tmp_path, "list-users")
    assert r.returncode == 0 and '"username": "carol"' in r.stdout and "password" not in r.stdout
    assert cli(tmp_path, "usage").returncode == 0
    r = cli(tmp_path, "usage", "--user", "carol")
    assert r.returncode == 0 and '"total"' in r.stdout
    assert cli(tmp_path, "usage", "--user", "nobody").returncode == 1


async def test_usage_rows_are_the_same_from_core_and_from_the_sqlite_cursor(ops):
    from sqlalchemy import delete, select

    from services.usage import record_usage, record_usage_sqlite, usage_t

    async with ops.client() as c:
        token = await register(c, "dora")
    async with ops.client(token) as a:
        sid = await new_session(a, token)
        answer = await chat(a, sid)
    db, gen = ops.services.db, answer["generation_id"]

    def rows(conn):
        return [
            {k: v for k, v in r._mapping.items() if k not in ("pk", "created_at")}
            for r in conn.execute(select(usage_t))
        ]

    by_cursor = await db.run(rows)  # written by the runner, through the SQLite cursor
    assert by_cursor[0]["generation_id"] == gen and by_cursor[0]["session_id"] == sid
    assert await db.run(record_usage_sqlite, gen, "x", answer["usage"]) is None  # once per generation
    await db.run(lambda conn: conn.execute(delete(usage_t)))
    owner = await db.run(record_usage, gen, answer["model"], answer["usage"])
    assert owner == (by_cursor[0]["user_id"], sid)
    assert await db.run(rows) == by_cursor


async def test_admin_sets_a_users_limits_and_restores_the_defaults(ops):
    async with ops.client() as c:
        token = await register(c, "lim")
    async with ops.client(ops.admin) as root, ops.client(token) as user:
        uid = next(u["id"] for u in (await root.get("/admin/users")).json()["users"] if u["username"] == "lim")
        r = await root.put(f"/admin/users/{uid}/limits", json={"requests_per_minute": 3})
        assert r.status_code == 200, r.text
        assert r.json()["requests_per_minute"] == 3
        assert r.json()["max_open_streams"] == ops.settings.user_max_open_streams  # untouched: the default
        statuses = [(await user.get("/sessions")).status_code for _ in range(4)]
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429
        r = await root.put(f"/admin/users/{uid}/limits", json={})
        assert r.json()["requests_per_minute"] == ops.settings.user_requests_per_minute
        for body in ({"requests_per_minute": 0}, {"unknown": 5}, {"max_open_streams": "5"}):
            r = await root.put(f"/admin/users/{uid}/limits", json=body)
            assert r.status_code == 422, body
        missing = "01" + "0" * 24
        assert (await root.put(f"/admin/users/{missing}/limits", json={})).status_code == 404
        assert (await user.put(f"/admin/users/{uid}/limits", json={})).status_code == 403


async def test_cli_sets_limits(tmp_path):
    assert cli(tmp_path, "create-user", "dora", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    r = cli(tmp_path, "set-limits", "DORA", "--max-open-streams", "2")
    assert r.returncode == 0, r.stderr
    assert '"max_open_streams": 2' in r.stdout and '"requests_per_minute": 600' in r.stdout
    r = cli(tmp_path, "set-limits", "dora")
    assert r.returncode == 0 and '"max_open_streams": 32' in r.stdout
    assert cli(tmp_path, "set-limits", "nobody").returncode == 1
