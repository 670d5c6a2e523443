"""Brute force and spraying (issue 15.6): a per-account limit whatever the source address,
a per-address limit across accounts, X-Forwarded-For believed only from TRUSTED_PROXIES,
and a limiter whose memory stays bounded."""

import asyncio
import secrets
import time
import tracemalloc

import pytest

from services.client_address import client_address, parse_proxies
from tests.support import PASSWORD, Server, make_settings, register


async def _fail(client, username: str, xff: str | None = None) -> int:
    headers = {"X-Forwarded-For": xff} if xff else {}
    r = await client.post("/token", data={"username": username, "password": "not-the-password"}, headers=headers)
    return r.status_code


@pytest.fixture
async def proxied(tmp_path):
    """Behind a trusted proxy on loopback: each request may claim its own client address."""
    server = await Server(make_settings(tmp_path, login_max_failures=3, trusted_proxies="127.0.0.1")).start()
    yield server
    await server.stop()


async def test_an_account_is_limited_whatever_address_the_guesses_come_from(proxied):
    async with proxied.client() as c:
        await register(c, "victim")
        codes = [await _fail(c, "victim", f"198.51.100.{i}") for i in range(5)]
        assert codes == [401, 401, 401, 429, 429]
        r = await c.post(
            "/token", data={"username": "VICTIM", "password": PASSWORD}, headers={"X-Forwarded-For": "203.0.113.9"}
        )
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"
        assert int(r.headers["Retry-After"]) >= 1 and r.headers["X-RateLimit-Limit"] == "3"
        # Other accounts, from those same addresses, are not affected.
        await register(c, "bystander")


async def test_one_address_is_limited_across_usernames(tmp_path):
    server = await Server(make_settings(tmp_path, login_max_failures_per_client=4)).start()
    try:
        async with server.client() as c:
            await register(c, "real")
            codes = [await _fail(c, f"sprayed{i}") for i in range(6)]
            assert codes == [401, 401, 401, 401, 429, 429]
            r = await c.post("/token", data={"username": "real", "password": PASSWORD})
            assert r.status_code == 429  # the address is spent, whatever the account
    finally:
        await server.stop()


async def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(tmp_path):
    # Default: no trusted proxy. Claiming a new address per request changes nothing.
    server = await Server(make_settings(tmp_path, login_max_failures_per_client=3)).start()
    try:
        async with server.client() as c:
            codes = [await _fail(c, f"user{i}", f"192.0.2.{i}") for i in range(4)]
            assert codes == [401, 401, 401, 429]
    finally:
        await server.stop()


async def test_a_trusted_proxy_gives_each_client_its_own_count(tmp_path):
    server = await Server(
        make_settings(tmp_path, login_max_failures_per_client=3, trusted_proxies="127.0.0.0/8, ::1")
    ).start()
    try:
        async with server.client() as c:
            # Two clients behind the proxy, three failures each (different accounts): no 429.
            codes = [await _fail(c, f"user{i}", f"192.0.2.{i % 2}") for i in range(6)]
            assert codes == [401] * 6
            assert await _fail(c, "user9", "192.0.2.1") == 429
            # A client cannot escape by prepending its own claim: the proxy appends the real one.
            assert await _fail(c, "user10", "10.9.9.9, 192.0.2.1") == 429
    finally:
        await server.stop()


def test_forwarded_for_is_read_from_the_right():
    proxies = parse_proxies("10.0.0.0/8,127.0.0.1")
    assert client_address("127.0.0.1", "1.2.3.4", ()) == "127.0.0.1"
    assert client_address("127.0.0.1", "1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.1.1.1", proxies) == "1.2.3.4"
    assert client_address("127.0.0.1", "10.1.1.1, 10.2.2.2", proxies) == "10.1.1.1"
    assert client_address("127.0.0.1", "garbage, 1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("127.0.0.1", "1.2.3.4, garbage", proxies) == "127.0.0.1"
    assert client_address("203.0.113.5", "1.2.3.4", proxies) == "203.0.113.5"


async def test_twenty_thousand_random_usernames_keep_the_limiter_small(tmp_path):
    """The failures of 20,000 distinct, oversized usernames, fed to the server's own limiter
    (the route does exactly this before each password check; 20,000 argon2 checks over HTTP
    would take many minutes)."""
    server = await Server(make_settings(tmp_path, login_max_failures_per_client=1_000_000)).start()
    limits = server.services.limits
    try:
        async with server.client() as c:
            assert await _fail(c, "x" * 900_000) == 401  # an oversized name is an ordinary failure
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for i in range(20_000):
            await limits.login_attempt(secrets.token_hex(500), f"198.51.{i % 250}.{i % 200}")
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        table = limits.storage.storage
        assert len(table) <= server.settings.limiter_max_entries
        assert grown < 4 * 1024 * 1024, f"limiter grew by {grown / 2**20:.1f} MiB"
    finally:
        await server.stop()


async def test_idle_counters_are_dropped(tmp_path):
    server = await Server(make_settings(tmp_path, login_failure_window=1)).start()
    limits = server.services.limits
    try:
        for i in range(50):
            await limits.login_attempt(f"idle{i}", "192.0.2.1")
        assert len(limits.storage.storage) >= 50
        deadline = time.monotonic() + 10
        while len(limits.storage.storage) > 2:  # the newcomer's own account and address
            assert time.monotonic() < deadline, "expired counters were never dropped"
            await asyncio.sleep(0.2)
            await limits.login_attempt("newcomer", "192.0.2.2")
    finally:
        await server.stop()
