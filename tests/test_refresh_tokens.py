"""Refresh tokens: the HttpOnly cookie POST /token sets, rotation, reuse detection, sign-out,
the lifetime setting, and that only hashes are stored."""

import hashlib

import httpx
from sqlalchemy import select

from models.db import RefreshToken
from tests.support import PASSWORD, Server, make_settings

COOKIE = "llmchat_refresh"


async def _sign_in(server: Server, name: str = "alice", register: bool = True) -> httpx.AsyncClient:
    c = server.client()
    if register:
        assert (await c.post("/users", json={"username": name, "password": PASSWORD})).status_code == 201
    r = await c.post("/token", data={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"access_token", "token_type", "expires_in"}  # the body is unchanged
    return c


def _cookie_header(r: httpx.Response) -> str:
    return next(v for k, v in r.headers.multi_items() if k == "set-cookie" and v.startswith(COOKIE + "="))


async def _refresh(c: httpx.AsyncClient, token: str | None = None) -> httpx.Response:
    if token is not None:
        c.cookies.clear()
        c.cookies.set(COOKIE, token, domain="127.0.0.1", path="/token/refresh")
    return await c.post("/token/refresh")


async def test_cookie_attributes_rotation_and_reuse(server):
    c = await _sign_in(server)
    login = await c.post("/token", data={"username": "alice", "password": PASSWORD})
    header = _cookie_header(login).lower()
    assert "httponly" in header and "samesite=strict" in header and "path=/token/refresh" in header
    assert f"max-age={14 * 86400}" in header and "secure" not in header  # plain http here
    first = c.cookies.get(COOKIE, path="/token/refresh")

    r = await _refresh(c)
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    second = c.cookies.get(COOKIE, path="/token/refresh")
    assert second and second != first
    me = await c.get("/sessions", headers={"Authorization": f"Bearer {r.json()['access_token']}"})
    assert me.status_code == 200

    # Only sha256 hashes are stored.
    async with server.services.db.sessionmaker() as db:
        hashes = set((await db.scalars(select(RefreshToken.token_hash))).all())
    assert hashlib.sha256(second.encode()).hexdigest() in hashes and second not in hashes

    # The rotated token again, after the grace: the whole family is revoked.
    server.services.settings.refresh_reuse_grace_seconds = 0
    reused = await _refresh(c, first)
    assert reused.status_code == 401 and reused.json()["code"] == "refresh_token_reused"
    assert (await _refresh(c, second)).json()["code"] == "refresh_token_reused"
    await c.aclose()


async def test_two_tabs_renewing_at_once_stay_signed_in(server):
    c = await _sign_in(server)
    token = c.cookies.get(COOKIE, path="/token/refresh")
    assert (await _refresh(c, token)).status_code == 200
    late = await _refresh(c, token)  # the other tab, with the cookie it read before the rotation
    assert late.status_code == 200 and "set-cookie" not in late.headers  # no new family member
    await c.aclose()


async def test_logout_revokes_and_clears(server):
    c = await _sign_in(server)
    token = c.cookies.get(COOKIE, path="/token/refresh")
    access = (await _refresh(c)).json()["access_token"]
    current = c.cookies.get(COOKIE, path="/token/refresh")
    r = await c.post("/logout", headers={"Authorization": f"Bearer {access}"})
    assert r.status_code == 204 and "max-age=0" in _cookie_header(r).lower()
    for old in (token, current):
        assert (await _refresh(c, old)).status_code == 401
    assert (await c.post("/logout")).status_code == 401  # signing out needs a credential
    await c.aclose()


async def test_bad_and_missing_cookies(server):
    c = server.client()
    r = await c.post("/token/refresh")
    assert r.status_code == 401 and r.json()["code"] == "refresh_token_missing"
    r = await _refresh(c, "not-a-token")
    assert r.status_code == 401 and r.json()["code"] == "invalid_refresh_token"
    assert "Traceback" not in r.text
    await c.aclose()


async def test_lifetime_setting(tmp_path):
    server = await Server(make_settings(tmp_path, refresh_token_ttl_days=0.5)).start()
    try:
        c = await _sign_in(server)
        assert f"max-age={43200}" in _cookie_header(await c.post("/token/refresh")).lower()
        async with server.services.db.sessionmaker() as db:  # the clock moves on past expiry
            for row in (await db.scalars(select(RefreshToken))).all():
                row.expires_at = row.created_at
            await db.commit()
        r = await c.post("/token/refresh")
        assert r.status_code == 401 and r.json()["code"] == "invalid_refresh_token"
        await c.aclose()
    finally:
        await server.stop()
