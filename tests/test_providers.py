"""Providers through the real service and the fake upstream over real HTTP: OpenAI-compatible
(OPENAI_BASE_URL), a generic provider from FOO_API_KEY + FOO_BASE_URL, discovery with a provider
down, each error class, retries, fallbacks, usage and scrubbed secrets."""

import os
from contextlib import asynccontextmanager

import httpx
import pytest

from tests.support import Server, free_port, make_settings, new_session, read_sse, register

PROVIDER_VARS = ("_API_KEY", "_BASE_URL", "_MODELS")
SECRET = "plain-secret-4f9a8b7c"
TRANSPORTS = ["aiohttp", "httpx"]  # PROVIDER_HTTP_TRANSPORT: both must behave the same


@asynccontextmanager
async def serve(tmp_path, env: dict[str, str] | None = None, **overrides):
    """The service configured the production way, through provider variables in the environment
    (any of the developer's own are hidden), with an authenticated client."""
    with pytest.MonkeyPatch.context() as mp:
        for var in list(os.environ):
            if var.upper().endswith(PROVIDER_VARS):
                mp.delenv(var)
        for var, value in (env or {}).items():
            mp.setenv(var, value)
        values = dict(provider_retry_backoff=0.01, ollama_probe_timeout=0)
        values.update(overrides)
        srv = Server(make_settings(tmp_path, **values))  # the registry reads the environment here
    await srv.start()
    try:
        async with srv.client() as c:
            token = await register(c, "pat")
        async with srv.client(token) as c:
            c.token = token
            yield c
    finally:
        await srv.stop()


def openai_env(fake, **extra) -> dict[str, str]:
    return {"OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": "sk-test-openai-0000", **extra}


async def behave(fake, **options) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        await c.post("/_fake/reset")
        (await c.post("/_fake/behaviour", json=options)).raise_for_status()


async def stats(fake) -> dict:
    async with httpx.AsyncClient(base_url=fake.base_url) as c:
        return (await c.get("/_fake/stats")).json()


async def ask(client, sid: str, message: str = "hello there friend") -> tuple[str, dict]:
    """Sends one message as SSE; returns the streamed text and the done frame."""
    async with client.stream("POST", "/chat", json={"session_id": sid, "message": message, "stream": True}) as r:
        assert r.status_code == 200, await r.aread()
        frames = await read_sse(r)
    assert frames[-1]["type"] == "done", frames
    return "".join(f["chunk"] for f in frames if f["type"] == "chunk"), frames[-1]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_openai_compatible_streams_and_stores_usage_from_the_stream(tmp_path, fake, transport):
    async with serve(
        tmp_path, openai_env(fake), default_model="openai/fake-model", provider_http_transport=transport
    ) as c:
        await behave(fake, n=5)
        sid = await new_session(c, c.token)
        text, done = await ask(c, sid)
        assert text == "t0 t1 t2 t3 t4 "
        assert (done["status"], done["finish_reason"], done["model"]) == ("completed", "stop", "openai/fake-model")
        assert done["usage"] == {"prompt_tokens": 3, "completion_tokens": 5}  # the fake's own counts
        sent = (await stats(fake))["last_request"]
        assert sent["stream_options"] == {"include_usage": True} and sent["max_tokens"] == 1024
        stored = (await c.get(f"/generations/{done['generation_id']}")).json()
        assert stored["usage"] == done["usage"] and stored["content"] == text


async def test_generic_provider_from_environment_needs_no_code(tmp_path, fake):
    env = {
        "FOO_API_KEY": "foo-key-123456",
        "FOO_BASE_URL": fake.openai_base_url,
        "FOO_MODELS": "extra-model",
        "UNRELATED_API_KEY": "ignored-without-a-base-url",
    }
    async with serve(tmp_path, env, default_model="foo/fake-model") as c:
        body = (await c.get("/models")).json()
        assert [p["name"] for p in body["providers"]] == ["offline", "foo"]
        ids = [m["id"] for m in body["data"] if m["provider"] == "foo"]
        assert ids == ["foo/fake-model", "foo/fake-model-2", "foo/extra-model"]  # listed, then configured
        await behave(fake, n=2)
        sid = await new_session(c, c.token, model_name="fake-model-2")  # bare: the default's provider
        text, done = await ask(c, sid)
        assert text == "t0 t1 " and done["model"] == "foo/fake-model-2" and done["status"] == "completed"
        assert (await stats(fake))["last_request"]["max_tokens"] == 1024  # generic servers get max_tokens


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_models_reports_a_down_provider_and_set_llm_lists_the_available(tmp_path, fake, transport):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = openai_env(fake, DOWN_API_KEY="down-key-123456", DOWN_BASE_URL=dead, DOWN_MODELS="m1")
    async with serve(tmp_path, env, provider_http_transport=transport) as c:
        body = (await c.get("/models")).json()
        providers = {p["name"]: p for p in body["providers"]}
        assert providers["openai"]["status"] == "up" and providers["offline"]["status"] == "up"
        assert providers["down"]["status"] == "down" and "down:" in providers["down"]["error"]
        models = {m["id"]: m["available"] for m in body["data"]}
        assert models["down/m1"] is False and models["openai/fake-model"] is True
        assert body["default_model"] == "offline/simulated" and models["offline/simulated"] is True

        r = await c.post("/set-llm", json={"model_name": "openai/gpt-17"})
        assert r.status_code == 422 and r.json()["code"] == "unknown_model"
        assert "openai/fake-model" in r.json()["detail"] and "down/m1" not in r.json()["detail"]
        sid = await new_session(c, c.token, model_name="down/m1")  # cannot be checked: accepted
        text, done = await ask(c, sid)
        assert text == "" and done["status"] == "failed" and done["error"]["code"] == "upstream_unavailable"


ERRORS = [  # fake upstream status -> error code, requests made (retryable ones: 1 + 2 retries)
    (401, "provider_auth_failed", 1),
    (403, "provider_auth_failed", 1),
    (404, "model_not_found", 1),
    (429, "provider_rate_limited", 3),
    (500, "upstream_error", 3),
    (503, "upstream_error", 3),
    (400, "provider_bad_request", 2),  # 400: once more without stream_options, then given up
]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_each_error_class_ends_as_a_failed_done_frame(tmp_path, fake, transport):
    async with serve(
        tmp_path, openai_env(fake), default_model="openai/fake-model", provider_http_transport=transport
    ) as c:
        sid = await new_session(c, c.token)
        for status, code, requests in ERRORS:
            await behave(fake, status=status)
            text, done = await ask(c, sid)
            assert (done["status"], done["finish_reason"], text) == ("failed", "error", ""), status
            assert done["error"]["code"] == code, (status, done)
            assert done["error"]["message"].startswith("openai: fake upstream"), done
            assert (await stats(fake))["requests"] == requests, status
        # The synchronous POST /chat answers 200 with the failure: the message was stored.
        r = await c.post("/chat", json={"session_id": sid, "message": "again"})
        assert r.status_code == 200 and r.json()["status"] == "failed"
        assert r.json()["error"]["code"] == "provider_bad_request"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_error_mid_stream_keeps_the_text_and_is_never_retried(tmp_path, fake, transport):
    async with serve(
        tmp_path, openai_env(fake), default_model="openai/fake-model", provider_http_transport=transport
    ) as c:
        await behave(fake, error_after=3)
        sid = await new_session(c, c.token, fallback_models=["openai/fake-model-2"])
        text, done = await ask(c, sid)
        assert text == "t0 t1 t2 " and done["status"] == "failed" and done["error"]["code"] == "upstream_error"
        assert "fake upstream error after 3 tokens" in done["error"]["message"]
        assert done["model"] == "openai/fake-model"  # no fallback either once text went out
        assert (await stats(fake))["requests"] == 1
        stored = (await c.get(f"/generations/{done['generation_id']}")).json()
        assert stored["content"] == text and stored["error"] == done["error"]


async def test_transient_failures_before_the_first_token_are_retried(tmp_path, fake):
    async with serve(tmp_path, openai_env(fake), default_model="openai/fake-model") as c:
        await behave(fake, fail_times=2, n=3)  # two 503s, then an answer
        sid = await new_session(c, c.token)
        text, done = await ask(c, sid)
        assert text == "t0 t1 t2 " and done["status"] == "completed"
        assert (await stats(fake))["requests"] == 3


async def test_fallback_model_answers_when_the_primary_keeps_failing(tmp_path, fake):
    env = openai_env(
        fake, OPENAI_MODELS="fake-model@status=503", FOO_API_KEY="foo-key-123456", FOO_BASE_URL=fake.openai_base_url
    )
    async with serve(tmp_path, env, default_model="openai/fake-model") as c:
        sid = await new_session(
            c, c.token, model_name="openai/fake-model@status=503", fallback_models=["foo/fake-model"]
        )
        await behave(fake, n=2)
        text, done = await ask(c, sid)
        assert text == "t0 t1 " and done["status"] == "completed" and done["model"] == "foo/fake-model"
        assert (await stats(fake))["requests"] == 3 + 1  # the primary with its retries, then the fallback
        assert (await c.get(f"/generations/{done['generation_id']}")).json()["model"] == "foo/fake-model"


async def test_server_rejecting_stream_options_is_asked_again_without_them(tmp_path, fake):
    async with serve(tmp_path, openai_env(fake), default_model="openai/fake-model") as c:
        await behave(fake, fail_times=1, status=400, n=4)
        sid = await new_session(c, c.token)
        text, done = await ask(c, sid)
        assert text == "t0 t1 t2 t3 " and done["status"] == "completed"
        assert done["usage"]["completion_tokens"] == 4  # counted locally
        assert (await stats(fake))["requests"] == 2 and "stream_options" not in (await stats(fake))["last_request"]
        await ask(c, sid)  # remembered: no rejected first try any more
        assert (await stats(fake))["requests"] == 3 and "stream_options" not in (await stats(fake))["last_request"]


async def test_secrets_never_leave_in_error_messages(tmp_path, fake):
    # The fake echoes a bad option value in its error: here the configured key itself.
    env = {"FOO_API_KEY": SECRET, "FOO_BASE_URL": fake.openai_base_url, "FOO_MODELS": f"fake-model@n={SECRET}"}
    async with serve(tmp_path, env, default_model="offline/simulated") as c:
        sid = await new_session(c, c.token, model_name=f"foo/fake-model@n={SECRET}")
        _, done = await ask(c, sid)
        assert done["error"]["code"] == "provider_bad_request"
        message = done["error"]["message"]
        assert "bad value for n" in message and "[redacted]" in message and SECRET not in message
        stored = (await c.get(f"/generations/{done['generation_id']}")).json()
        assert SECRET not in str(stored["error"])


async def test_test_and_check_report_latency_or_the_error(tmp_path, fake):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    env = openai_env(fake, DOWN_API_KEY="down-key-123456", DOWN_BASE_URL=dead, DOWN_MODELS="m1")
    async with serve(tmp_path, env, default_model="openai/fake-model", provider_check_timeout=0.5) as c:
        async with httpx.AsyncClient(base_url=str(c.base_url)) as anonymous:
            assert (await anonymous.get("/test")).status_code == 401
            assert (await anonymous.get("/models/openai/fake-model/check")).status_code == 401
        await behave(fake, n=2)
        r = await c.get("/test")
        assert r.status_code == 200 and r.json()["ok"] is True and r.json()["sample"] == "t0 t1 "
        assert r.json()["model"] == "openai/fake-model" and r.json()["first_token_ms"] >= 0
        r = await c.get("/models/openai/fake-model-2/check")
        assert r.status_code == 200 and r.json()["model"] == "openai/fake-model-2"
        r = await c.get("/models/openai/gpt-17/check")
        assert r.status_code == 422 and r.json()["code"] == "unknown_model"
        r = await c.get("/models/down/m1/check")
        assert (r.status_code, r.json()["code"]) == (503, "upstream_unavailable")
        for behaviour, status, code in [
            ({"status": 401}, 502, "provider_auth_failed"),
            ({"status": 404}, 404, "model_not_found"),
            ({"status": 429}, 429, "provider_rate_limited"),
            ({"status": 500}, 502, "upstream_error"),
            ({"ttft": 3}, 504, "upstream_timeout"),
        ]:
            await behave(fake, **behaviour)
            r = await c.get("/test")
            body = r.json()
            assert (r.status_code, body["code"], body["ok"]) == (status, code, False), behaviour
            assert body["error"] == {"code": code, "message": body["detail"]}


async def test_help_describes_endpoints_models_and_provider_presets(tmp_path, fake):
    async with serve(tmp_path, openai_env(fake)) as c:
        body = (await c.get("/api/v1/help")).json()
        assert "GET /models/{provider}/{model}/check" in body["endpoints"] and "POST /set-llm" in body["endpoints"]
        assert "done" in body["frames"] and body["auth"]["rest"].startswith("Authorization")
        assert {"offline/simulated", "openai/fake-model"} <= {m["id"] for m in body["models"]}
        presets = {p["name"]: p for p in body["configuring_providers"]["presets"]}
        assert presets["groq"]["base_url"] == "https://api.groq.com/openai/v1"
        assert presets["ollama"]["enable"].startswith("OLLAMA_BASE_URL")
        assert "sk-test-openai-0000" not in str(body)
