"""Anthropic's Messages API through the official SDK, against the fake upstream's Anthropic endpoint
over real HTTP: message mapping, streaming, usage, stop reasons, errors, retries and closing."""

import asyncio

import httpx

from fakeupstream import FakeUpstream
from services.providers.anthropic_provider import AnthropicProvider, to_messages
from services.providers.base import ChatRequest, Finish, Usage
from tests.support import free_port, new_session
from tests.test_providers import ask, behave, serve, stats

KEY = "sk-ant-test-0123456789"


def anthropic_env(fake) -> dict[str, str]:
    return {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": fake.base_url}


async def collect(provider, request: ChatRequest) -> list:
    return [event async for event in provider.stream(request)]


def test_system_goes_top_level_and_same_role_turns_are_merged():
    system, messages = to_messages(
        [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "one"},
            {"role": "user", "content": "two"},
            {"role": "assistant", "content": ""},  # a failed answer: empty text is refused by the API
            {"role": "user", "content": "three"},
            {"role": "assistant", "content": "ok"},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "four"},
        ]
    )
    assert system == "Be terse.\n\nAnswer in French."
    assert messages == [
        {"role": "user", "content": "one\n\ntwo\n\nthree"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "four"},
    ]
    assert to_messages([{"role": "assistant", "content": "hi"}])[1][0]["role"] == "user"


async def test_stream_request_shape_usage_and_stop_reasons(fake):
    provider = AnthropicProvider("anthropic", fake.base_url, KEY)
    try:
        await behave(fake, n=3)
        messages = [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "hello there"},
            {"role": "user", "content": "again"},
        ]
        events = await collect(provider, ChatRequest("fake-model", messages, temperature=0.2, max_tokens=50))
        assert events == ["t0 ", "t1 ", "t2 ", Usage(prompt_tokens=5, completion_tokens=3), Finish("stop")]
        sent = (await stats(fake))["last_request"]
        assert sent["system"] == "Be terse." and sent["max_tokens"] == 50 and sent["stream"] is True
        assert sent["messages"] == [{"role": "user", "content": "hello there\n\nagain"}]
        assert "temperature" not in sent and "top_p" not in sent  # refused by the API version the SDK speaks

        await behave(fake, n=10)
        events = await collect(provider, ChatRequest("fake-model", messages[1:2], max_tokens=4))
        assert events[-2:] == [Usage(prompt_tokens=2, completion_tokens=4), Finish("length")]  # max_tokens
        assert await provider.list_models() == ["fake-model", "fake-model-2"]
    finally:
        await provider.aclose()


async def test_aclose_closes_the_http_stream(fake):
    provider = AnthropicProvider("anthropic", fake.base_url, KEY)
    try:
        await behave(fake, n=500, tps=50)
        events = provider.stream(ChatRequest("fake-model", [{"role": "user", "content": "hi"}], max_tokens=500))
        assert [await anext(events), await anext(events)] == ["t0 ", "t1 "]
        await events.aclose()
        for _ in range(100):  # the fake notices a departed client within ~200 ms
            if (s := await stats(fake))["disconnected"] == 1:
                break
            await asyncio.sleep(0.05)
        assert (s["active"], s["completed"], s["disconnected"]) == (0, 0, 1)
    finally:
        await provider.aclose()


async def test_a_wrong_key_is_provider_auth_failed_and_the_key_is_sent():
    with FakeUpstream(api_key=KEY) as guarded:
        for key, ok in (("sk-ant-wrong-0000000000", False), (KEY, True)):
            provider = AnthropicProvider("anthropic", guarded.base_url, key)
            try:
                events = await collect(provider, ChatRequest("fake-model", [{"role": "user", "content": "hi"}]))
                assert ok and events[-1] == Finish("stop")
            except Exception as exc:
                assert not ok and exc.code == "provider_auth_failed" and not exc.retryable
                assert "sk-ant-wrong" not in exc.detail
            finally:
                await provider.aclose()


async def test_chat_through_the_service(tmp_path, fake):
    async with serve(tmp_path, anthropic_env(fake), default_model="anthropic/fake-model") as c:
        body = (await c.get("/models")).json()
        assert {"anthropic/fake-model", "anthropic/fake-model-2"} <= {m["id"] for m in body["data"]}
        assert {"name": "anthropic", "kind": "anthropic", "status": "up", "models": 2} in body["providers"]
        await behave(fake, n=4)
        sid = await new_session(c, c.token, system_prompt="You are terse.")
        text, done = await ask(c, sid, "hello there")
        assert text == "t0 t1 t2 t3 " and done["status"] == "completed" and done["model"] == "anthropic/fake-model"
        assert done["usage"] == {"prompt_tokens": 5, "completion_tokens": 4}  # message_start / message_delta
        sent = (await stats(fake))["last_request"]
        assert sent["system"] == "You are terse." and [m["role"] for m in sent["messages"]] == ["user"]
        text, done = await ask(c, sid, "and again")  # the history goes along, alternating
        assert [m["role"] for m in (await stats(fake))["last_request"]["messages"]] == ["user", "assistant", "user"]
        r = await c.get("/test")
        assert r.status_code == 200 and r.json()["model"] == "anthropic/fake-model"


ERRORS = [  # fake upstream status -> error code, requests made (retryable ones: 1 + 2 retries)
    (401, "provider_auth_failed", 1),
    (403, "provider_auth_failed", 1),
    (404, "model_not_found", 1),
    (400, "provider_bad_request", 1),
    (429, "provider_rate_limited", 3),
    (500, "upstream_error", 3),
    (529, "upstream_error", 3),
]


async def test_errors_retries_and_mid_stream_failures_through_the_service(tmp_path, fake):
    async with serve(tmp_path, anthropic_env(fake), default_model="anthropic/fake-model") as c:
        sid = await new_session(c, c.token)
        for status, code, requests in ERRORS:
            await behave(fake, status=status)
            text, done = await ask(c, sid)
            assert (done["status"], text, done["error"]["code"]) == ("failed", "", code), (status, done)
            assert done["error"]["message"].startswith("anthropic: fake upstream"), done
            assert (await stats(fake))["requests"] == requests, status

        await behave(fake, fail_times=1, status=529, n=2)  # overloaded once, then an answer
        text, done = await ask(c, sid)
        assert (text, done["status"], (await stats(fake))["requests"]) == ("t0 t1 ", "completed", 2)

        await behave(fake, error_after=2)  # an `error` event after text: kept, not retried
        text, done = await ask(c, sid)
        assert text == "t0 t1 " and done["status"] == "failed" and done["error"]["code"] == "upstream_error"
        assert "fake upstream error after 2 tokens" in done["error"]["message"]
        assert (await stats(fake))["requests"] == 1


async def test_anthropic_check_reports_an_unreachable_endpoint(tmp_path, fake):
    env = {"ANTHROPIC_API_KEY": KEY, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{free_port()}"}
    async with serve(tmp_path, env, default_model="anthropic/claude-sonnet-5-5") as c:
        body = (await c.get("/models")).json()
        down = next(p for p in body["providers"] if p["name"] == "anthropic")
        assert down["status"] == "down" and down["error"].startswith("anthropic:")
        offered = {m["id"]: m["available"] for m in body["data"]}
        assert offered["anthropic/claude-sonnet-5-5"] is False  # the preset's, while none are listed
        r = await c.get("/test")
        assert (r.status_code, r.json()["code"]) == (503, "upstream_unavailable")
        async with httpx.AsyncClient(base_url=fake.base_url) as raw:  # nothing reached the fake
            assert (await raw.get("/_fake/stats")).json()["requests"] == 0
