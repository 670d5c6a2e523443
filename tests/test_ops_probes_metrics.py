"""Probes, /metrics (content, settings) and the request id, over real HTTP."""

import re

import httpx
import pytest

from tests.support import WS, Server, free_port, make_settings, new_session, register


def sample(text: str, name: str, **labels) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        series, _, value = line.rpartition(" ")
        match = re.fullmatch(re.escape(name) + r"(\{(.*)\})?", series)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


async def test_livez_and_readyz(client):
    r = await client.get("/livez")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "checks": {"database": "up"}}


async def test_readyz_is_503_when_the_database_is_gone(server, client):
    await server.services.db.engine.dispose()
    server.services.db.engine.sync_engine.pool._creator = _refuse  # every new connection fails
    r = await client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["status"] == "not_ready" and r.json()["checks"]["database"] != "up"
    assert (await client.get("/livez")).status_code == 200  # liveness checks nothing


def _refuse(*_):
    raise OSError("database unreachable")


async def test_metrics_after_chats(server, client, auth, token):
    before = (await client.get("/metrics")).text
    sid = await new_session(auth, token)
    for i in range(2):
        r = await auth.post("/chat", json={"session_id": sid, "message": f"hi {i}"})
        assert r.status_code == 200 and r.json()["status"] == "completed"
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send({"type": "message", "content": "over the socket"})
        accepted = await ws.recv()
        done = (await ws.until_done(accepted["generation_id"]))[-1]
        text = (await client.get("/metrics")).text
        assert sample(text, "chat_streams_open", transport="websocket") >= 1
    assert done["status"] == "completed"
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = r.text

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("chat_generations_started_total", provider="offline") == 3
    assert delta("chat_generations_ended_total", provider="offline", status="completed", finish_reason="stop") == 3
    assert delta("chat_time_to_first_token_seconds_count", provider="offline") == 3
    assert delta("chat_generation_duration_seconds_count", provider="offline", status="completed") == 3
    assert delta("chat_tokens_total", type="completion", provider="offline") > done["usage"]["completion_tokens"]
    assert delta("http_requests_total", method="POST", route="/chat", status="200") == 2
    assert delta("chat_websocket_connections_total") == 1
    assert sample(after, "chat_generations_queued") == 0
    # bounded labels: no id of a user, session or generation anywhere
    assert sid not in after and done["generation_id"] not in after


async def test_request_id_is_returned_and_taken_from_the_client(client):
    r = await client.get("/livez", headers={"X-Request-ID": "abc-123"})
    assert r.headers["x-request-id"] == "abc-123"
    r = await client.get("/livez", headers={"X-Request-ID": "bad id with spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])
    r = await client.get("/livez")
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["x-request-id"])


async def test_route_templates_label_http_metrics(client, auth, token):
    sid = await new_session(auth, token)
    await auth.get(f"/sessions/{sid}")
    await client.get("/no/such/path")
    text = (await client.get("/metrics")).text
    assert sample(text, "http_requests_total", method="GET", route="/sessions/{session_id}", status="200") >= 1
    assert sample(text, "http_requests_total", method="GET", route="unmatched", status="404") >= 1


async def test_metrics_off_token_and_port(tmp_path):
    off = await Server(make_settings(tmp_path / "a", metrics_enabled=False)).start()
    try:
        async with off.client() as c:
            assert (await c.get("/metrics")).status_code == 404
    finally:
        await off.stop()
    guarded = await Server(make_settings(tmp_path / "b", metrics_token="scrape-secret-0123456789")).start()
    try:
        async with guarded.client() as c:
            r = await c.get("/metrics")
            assert r.status_code == 401 and r.json()["code"] == "not_authenticated"
            assert (await c.get("/metrics", headers={"Authorization": "Bearer wrong"})).status_code == 401
            r = await c.get("/metrics", headers={"Authorization": "Bearer scrape-secret-0123456789"})
            assert r.status_code == 200 and "chat_generations_started_total" in r.text
    finally:
        await guarded.stop()
    port = free_port()
    apart = await Server(make_settings(tmp_path / "c", metrics_port=port)).start()
    try:
        async with apart.client() as c:
            assert (await c.get("/metrics")).status_code == 404
        async with httpx.AsyncClient() as c:
            r = await c.get(f"http://127.0.0.1:{port}/metrics")
            assert r.status_code == 200 and "http_requests_total" in r.text
    finally:
        await apart.stop()


async def behave(fake, **options) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        await c.post("/_fake/reset")
        (await c.post("/_fake/behaviour", json=options)).raise_for_status()


async def test_guard_retry_and_provider_error_metrics(upstream, up, fake):
    async with upstream.client() as c:
        before = (await c.get("/metrics")).text
        sid = await new_session(up, upstream.token)
        await behave(fake, loop=1, tps=500)
        r = await up.post("/chat", json={"session_id": sid, "message": "loop"})
        assert r.json()["finish_reason"] == "loop"
        await behave(fake, status=503)
        r = await up.post("/chat", json={"session_id": sid, "message": "fail"})
        assert r.json()["status"] == "failed"
        code = r.json()["error"]["code"]
        after = (await c.get("/metrics")).text

    def delta(name, **labels):
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert delta("chat_guards_fired_total", kind="loop") == 1
    retries = delta("chat_provider_retries_total", provider="openai")
    assert retries == upstream.settings.provider_max_retries  # a 503 is worth retrying
    assert delta("chat_provider_errors_total", provider="openai", code=code) == retries + 1
    assert delta("chat_generations_ended_total", provider="openai", status="failed", finish_reason="error") == 1


@pytest.mark.scaleout  # the local Redis server
async def test_a_broker_outage_leaves_a_replica_ready_but_redis_does_not(tmp_path):
    """Scale-out dispatch with RabbitMQ unreachable: messages are still accepted, so /readyz
    is 200 while /health reports the broker down; with Redis unreachable, /readyz is 503."""
    from tests.scaleout_support import REDIS_URL, unique

    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    settings = make_settings(
        tmp_path / "a", redis_url=REDIS_URL, rabbitmq_url=dead, redis_key_prefix=unique("readyz") + ":"
    )
    srv = await Server(settings).start()
    try:
        async with srv.client() as c:
            r = await c.get("/readyz")
            assert r.status_code == 200 and r.json()["checks"] == {"database": "up", "stream_log": "up"}
            health = await c.get("/health")
            assert health.status_code == 503 and health.json()["components"]["dispatch"]["status"] == "down"
            token = await register(c, "rita")
        async with srv.client(token) as a:
            sid = await new_session(a, token)
            r = await a.post("/chat", json={"session_id": sid, "message": "queued", "background": True})
            assert r.status_code == 202  # accepted and stored while the broker is down
    finally:
        await srv.stop()
    settings = make_settings(tmp_path / "b", redis_url=f"redis://127.0.0.1:{free_port()}/0", rabbitmq_url=dead)
    srv = await Server(settings).start()
    try:
        async with srv.client() as c:
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["stream_log"] != "up"
    finally:
        await srv.stop()
