"""Users, tokens and their failure cases (PROTOCOL.md, Authentication)."""

import asyncio
import statistics
import subprocess
import sys
import time

import jwt
import pytest
import websockets

from config import Settings
from tests.support import PASSWORD, Server, coverage_env, make_settings, register


async def test_register_and_sign_in(client):
    r = await client.post("/users", json={"username": "bob", "password": PASSWORD})
    assert r.status_code == 201
    assert set(r.json()) == {"id", "username"} and len(r.json()["id"]) == 26
    r = await client.post("/token", data={"username": "bob", "password": PASSWORD})
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "bearer" and body["expires_in"] == 3600
    r = await client.get("/sessions", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert r.status_code == 200


async def test_taken_username_is_409(client, token):
    r = await client.post("/users", json={"username": "alice", "password": PASSWORD})
    assert r.status_code == 409 and r.json()["code"] == "username_taken"


@pytest.mark.parametrize(
    "body, code",
    [
        ({"username": "x", "password": PASSWORD}, "invalid_username"),
        ({"username": "bob", "password": "short"}, "invalid_password"),
        ({"username": "bob"}, "validation_error"),
    ],
)
async def test_bad_registration_is_422(client, body, code):
    r = await client.post("/users", json=body)
    assert r.status_code == 422 and r.json()["code"] == code and r.json()["detail"]


async def test_registration_can_be_turned_off(tmp_path):
    server = await Server(make_settings(tmp_path, allow_registration=False)).start()
    try:
        async with server.client() as c:
            r = await c.post("/users", json={"username": "bob", "password": PASSWORD})
        assert r.status_code == 403 and r.json()["code"] == "registration_disabled"
    finally:
        await server.stop()


async def test_wrong_password_and_unknown_user_look_the_same(client, token):
    wrong = await client.post("/token", data={"username": "alice", "password": "wrong-password"})
    unknown = await client.post("/token", data={"username": "nobody", "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json() == unknown.json() == {"code": "invalid_credentials", "detail": "Incorrect username or password."}
    )

    async def timed(username):
        start = time.perf_counter()
        await client.post("/token", data={"username": username, "password": "wrong-password"})
        return time.perf_counter() - start

    known = statistics.median([await timed("alice") for _ in range(3)])
    missing = statistics.median([await timed("ghost") for _ in range(3)])
    # Both paths run one argon2 verification: same order of magnitude, not 10x apart.
    assert missing > known / 4 and known > missing / 4


async def test_repeated_failures_are_rate_limited(tmp_path):
    server = await Server(make_settings(tmp_path, login_max_failures=3)).start()
    try:
        async with server.client() as c:
            await register(c, "carol")
            codes = [
                (await c.post("/token", data={"username": "carol", "password": "nope-nope"})).status_code
                for _ in range(4)
            ]
            assert codes == [401, 401, 401, 429]
            r = await c.post("/token", data={"username": "carol", "password": PASSWORD})
            assert r.status_code == 429 and "Retry-After" in r.headers
    finally:
        await server.stop()


def _claims(server, **changes):
    cfg = server.services.tokens
    now = int(time.time())
    claims = {"sub": "x", "iat": now, "exp": now + 60, "iss": cfg.issuer, "aud": cfg.audience}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


async def test_token_validation_is_strict(server, client, token):
    cfg = server.services.tokens
    user_id = jwt.decode(token, cfg.secret_key, algorithms=["HS256"], audience=cfg.audience)["sub"]
    good = jwt.encode(_claims(server, sub=user_id), cfg.secret_key, algorithm="HS256")
    bad_tokens = {
        "expired": jwt.encode(
            _claims(server, sub=user_id, exp=int(time.time()) - 60), cfg.secret_key, algorithm="HS256"
        ),
        "forged": jwt.encode(
            _claims(server, sub=user_id), "another-secret-key-of-enough-length-000", algorithm="HS256"
        ),
        "alg none": jwt.encode(_claims(server, sub=user_id), None, algorithm="none"),
        "other alg": jwt.encode(_claims(server, sub=user_id), cfg.secret_key, algorithm="HS512"),
        "wrong audience": jwt.encode(_claims(server, sub=user_id, aud="elsewhere"), cfg.secret_key, algorithm="HS256"),
        "wrong issuer": jwt.encode(_claims(server, sub=user_id, iss="elsewhere"), cfg.secret_key, algorithm="HS256"),
        "no exp": jwt.encode(_claims(server, sub=user_id, exp=None), cfg.secret_key, algorithm="HS256"),
        "no iat": jwt.encode(_claims(server, sub=user_id, iat=None), cfg.secret_key, algorithm="HS256"),
        "unknown user": jwt.encode(
            _claims(server, sub="01ARZ3NDEKTSV4RRFFQ69G5FAV"), cfg.secret_key, algorithm="HS256"
        ),
        "garbage": "not.a.jwt",
    }
    assert (await client.get("/sessions", headers={"Authorization": f"Bearer {good}"})).status_code == 200
    sid = (await client.post("/set-llm", json={}, headers={"Authorization": f"Bearer {good}"})).json()["session_id"]
    for name, bad in bad_tokens.items():
        r = await client.get("/sessions", headers={"Authorization": f"Bearer {bad}"})
        assert r.status_code == 401, name
        assert r.json()["code"] in {"token_expired", "invalid_token"}, name
        # POST /chat checks the token and the session in one lookup; still 401, never 404.
        for body in ({"session_id": sid, "message": "hi"}, {"message": "hi"}):
            r = await client.post("/chat", json=body, headers={"Authorization": f"Bearer {bad}"})
            assert r.status_code == 401 and r.json()["code"] in {"token_expired", "invalid_token"}, (name, body)
        # So does a socket, which looks the user up only when its session is not found.
        for path in (f"/ws/{sid}", "/ws", "/ws/not-a-ulid"):
            async with websockets.connect(
                f"{server.ws_base}{path}", additional_headers={"Authorization": f"Bearer {bad}"}
            ) as conn:
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    await asyncio.wait_for(conn.recv(), 5)
                assert closed.value.rcvd.code == 4401, (name, path)
    assert (await client.get("/sessions")).json()["code"] == "not_authenticated"


def test_secret_key_is_generated_once_and_kept(tmp_path):
    first = make_settings(tmp_path).resolve_secret_key()
    assert len(first) >= 32
    assert make_settings(tmp_path).resolve_secret_key() == first
    assert oct((tmp_path / "data" / "secret_key").stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize("weak", ["secret", "changeme", "short-key"])
def test_weak_secret_key_is_refused(tmp_path, weak):
    with pytest.raises(ValueError, match="too weak"):
        Settings(_env_file=None, data_dir=tmp_path, secret_key=weak).resolve_secret_key()


def test_cli_creates_a_user_and_seeding_from_settings(tmp_path):
    env = {"DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin", **coverage_env()}
    result = subprocess.run(
        [sys.executable, "-m", "manage", "create-user", "dave", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "created user dave" in result.stdout
    again = subprocess.run(
        [sys.executable, "-m", "manage", "create-user", "dave", "--password-stdin"],
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert again.returncode == 1 and "taken" in again.stderr


async def test_initial_user_is_seeded(tmp_path):
    server = await Server(make_settings(tmp_path, initial_user="admin", initial_password=PASSWORD)).start()
    try:
        async with server.client() as c:
            r = await c.post("/token", data={"username": "admin", "password": PASSWORD})
        assert r.status_code == 200
    finally:
        await server.stop()
