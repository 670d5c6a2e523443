"""API keys: the routes, how keys are stored, the limits and the command line (issue 13.1)."""

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from models.db import ApiKey
from tests.support import PASSWORD, Server, coverage_env, create_key, make_settings, register, set_key_column

MISSING = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
LISTED = {"id", "name", "prefix", "created_at", "last_used_at", "expires_at"}


async def test_create_list_revoke(server, client, auth, token):
    created = await create_key(client, token, "laptop")
    assert set(created) == {"id", "name", "key", "prefix", "created_at", "expires_at"}
    assert created["name"] == "laptop" and created["expires_at"] is None
    assert created["key"].startswith(created["prefix"] + "_") and created["prefix"].startswith("sk-chat-")
    assert len(created["key"]) >= 60
    listed = await auth.get("/api-keys")
    assert listed.status_code == 200
    (row,) = listed.json()
    assert set(row) == LISTED and row["id"] == created["id"] and row["prefix"] == created["prefix"]
    assert created["key"] not in listed.text and created["key"][len(created["prefix"]) :] not in listed.text
    assert (await auth.delete(f"/api-keys/{created['id']}")).status_code == 204
    assert (await auth.get("/api-keys")).json() == []
    again = await auth.delete(f"/api-keys/{created['id']}")
    assert again.status_code == 404 and again.json()["code"] == "api_key_not_found"


async def test_another_users_key_is_404_like_a_missing_one(server, client, auth, token):
    mine = await create_key(client, token)
    bob = await register(client, "bob")
    headers = {"Authorization": f"Bearer {bob}"}
    theirs = await client.delete(f"/api-keys/{mine['id']}", headers=headers)
    missing = await client.delete(f"/api-keys/{MISSING}", headers=headers)
    assert theirs.status_code == missing.status_code == 404
    assert theirs.content == missing.content
    assert (await client.get("/api-keys", headers=headers)).json() == []
    # still alive for its owner
    r = await client.get("/sessions", headers={"Authorization": f"Bearer {mine['key']}"})
    assert r.status_code == 200


async def test_stored_only_as_a_keyed_hash(server, client, token):
    created = await create_key(client, token)
    stmt = select(ApiKey.__table__)
    (row,) = await server.services.db.run(lambda conn: conn.execute(stmt).all())
    secret = created["key"]
    assert secret not in " ".join(str(v) for v in row)
    expected = hmac.new(server.services.tokens.secret_key.encode(), secret.encode(), hashlib.sha256).hexdigest()
    assert row.secret_hash == expected and row.prefix == created["prefix"]


async def test_a_separate_hash_key_setting_is_used(tmp_path):
    hash_key = "k" * 40
    server = await Server(make_settings(tmp_path, api_key_hash_key=hash_key)).start()
    try:
        async with server.client() as c:
            created = await create_key(c, await register(c, "hana"))
            stmt = select(ApiKey.__table__.c.secret_hash)
            stored = await server.services.db.run(lambda conn: conn.execute(stmt).scalar_one())
            assert stored == hmac.new(hash_key.encode(), created["key"].encode(), hashlib.sha256).hexdigest()
            assert (await c.get("/sessions", headers={"Authorization": f"Bearer {created['key']}"})).status_code == 200
    finally:
        await server.stop()


@pytest.mark.parametrize(
    "body, code",
    [
        ({"name": ""}, "validation_error"),
        ({"name": "   "}, "validation_error"),
        ({"name": "a\nb"}, "validation_error"),
        ({"name": "\ud800"}, "validation_error"),  # a lone surrogate: refused by the JSON parser
        ({"name": "evil\u202etxt.exe"}, "validation_error"),  # a direction override would spoof listings
        ({"name": "x" * 101}, "validation_error"),
        ({"name": "ci", "expires_in_days": 0}, "validation_error"),
        ({"name": "ci", "expires_in_days": 2**63}, "validation_error"),
        ({"name": "ci", "expires_in_days": 3651}, "invalid_expiry"),
        ({"name": "ci", "expires_in_days": 1.5}, "validation_error"),
        ({"name": "ci", "expires_in_days": True}, "validation_error"),
        ({"name": "ci", "expires_in_days": "7"}, "validation_error"),
        ({"name": "ci", "extra": 1}, "validation_error"),
        ({}, "validation_error"),
    ],
)
async def test_bad_input_is_422(auth, body, code):
    # json.dumps escapes a lone surrogate as \ud800, as any JSON client may send it
    r = await auth.post("/api-keys", content=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["code"] == code, r.text


async def test_the_schema_states_the_configured_limits(client):
    schema = (await client.get("/openapi.json")).json()["components"]["schemas"]["ApiKeyCreate"]["properties"]
    days = next(b for b in schema["expires_in_days"]["anyOf"] if b.get("type") == "integer")
    assert days["maximum"] == 3650 and schema["name"]["pattern"] and schema["name"]["maxLength"] == 100


async def test_expiry_is_set_from_days(client, token):
    created = await create_key(client, token, expires_in_days=30.0)  # JSON Schema's integer 30
    expires = datetime.fromisoformat(created["expires_at"].replace("Z", "+00:00"))
    assert abs(expires - datetime.now(UTC) - timedelta(days=30)) < timedelta(minutes=1)


async def test_keys_per_user_are_limited(tmp_path):
    server = await Server(make_settings(tmp_path, api_keys_per_user=2)).start()
    try:
        async with server.client() as c:
            token = await register(c, "lim")
            first = await create_key(c, token)
            await create_key(c, token)
            r = await c.post("/api-keys", json={"name": "third"}, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 409 and r.json()["code"] == "too_many_api_keys"
            # an expired key takes no room
            await set_key_column(server, first["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
            await create_key(c, token, "third")
    finally:
        await server.stop()


async def test_last_used_is_written_at_most_once_per_interval(server, client, token):
    created = await create_key(client, token)
    as_key = {"Authorization": f"Bearer {created['key']}"}

    async def last_used():
        (row,) = (await client.get("/api-keys", headers=as_key)).json()
        return row["last_used_at"]

    first = await last_used()
    assert first is not None
    await client.get("/sessions", headers=as_key)
    assert await last_used() == first  # within API_KEY_TOUCH_INTERVAL: not written again
    old = datetime.now(UTC) - timedelta(minutes=2)
    await set_key_column(server, created["id"], last_used_at=old)
    assert (
        await last_used() not in (None, first)
        and datetime.fromisoformat((await last_used()).replace("Z", "+00:00")) > old
    )


def test_cli_creates_a_key_that_signs_in(tmp_path):
    env = {"DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", **coverage_env()}

    def run(*args, **kw):
        return subprocess.run(
            [sys.executable, "-m", "manage", *args], capture_output=True, text=True, env=env, timeout=60, **kw
        )

    assert run("create-user", "cleo", "--password-stdin", input=PASSWORD + "\n").returncode == 0
    made = run("create-api-key", "cleo", "--name", "deploy", "--expires-in-days", "7")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("sk-chat-") and "shown only now" in made.stderr and key not in made.stderr
    hidden = run("create-api-key", "cleo", "--name", "evil\u202etxt")  # the CLI has no pydantic model
    assert hidden.returncode == 1 and "visible characters" in hidden.stderr
    missing = run("create-api-key", "nobody")
    assert missing.returncode == 1 and "no user" in missing.stderr

    async def use():
        server = await Server(make_settings(tmp_path)).start()
        try:
            async with server.client(key) as c:
                assert (await c.get("/sessions")).status_code == 200
                (row,) = (await c.get("/api-keys")).json()
                assert row["name"] == "deploy" and row["expires_at"] is not None
        finally:
            await server.stop()

    asyncio.run(use())
