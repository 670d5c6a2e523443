"""The OpenAI-compatible API driven by the official `openai` Python SDK, over real HTTP
against a real uvicorn server: the offline model, and the fake upstream where a test needs
pacing or an error."""

import asyncio

import openai
import pytest
from openai import AsyncOpenAI

from tests.support import create_key


def sdk(server, token: str) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=server.base + "/v1", api_key=token, max_retries=0, timeout=30)


async def poll(fetch, ready, deadline: float = 20.0):
    async with asyncio.timeout(deadline):
        while True:
            value = await fetch()
            if ready(value):
                return value
            await asyncio.sleep(0.05)


async def test_models_list_matches_native_models(server, auth, token):
    native = (await auth.get("/models")).json()["data"]
    page = await sdk(server, token).models.list()
    assert [m.id for m in page.data] == [m["id"] for m in native]
    assert "offline/simulated" in [m.id for m in page.data]


async def test_models_need_auth(server):
    with pytest.raises(openai.AuthenticationError) as err:
        await sdk(server, "not-a-token").models.list()
    assert err.value.body["code"] in ("invalid_token", "not_authenticated")
    assert set(err.value.body) == {"message", "type", "param", "code"}


async def test_chat_completion_is_a_stored_generation(server, auth, token):
    client = sdk(server, token)
    raw = await client.chat.completions.with_raw_response.create(
        model="offline/simulated",
        temperature=0.3,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there"}]},
        ],
    )
    completion = raw.parse()
    generation_id = raw.headers["x-generation-id"]
    assert completion.id == "chatcmpl-" + generation_id
    assert completion.object == "chat.completion"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert "> Hello there" in choice.message.content
    assert "| your message number in this chat | 2 |" in choice.message.content  # history reached the model
    assert "A system prompt of 9 characters" in choice.message.content
    stored = (await auth.get(f"/generations/{generation_id}")).json()
    assert stored["content"] == choice.message.content and stored["status"] == "completed"
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # One session of kind "api" per call: out of the UI's list, listed with ?kind=api.
    assert (await auth.get("/sessions")).json()["total"] == 0
    api_sessions = (await auth.get("/sessions", params={"kind": "api"})).json()
    assert [s["session_id"] for s in api_sessions["items"]] == [raw.headers["x-session-id"]]
    assert api_sessions["items"][0]["title"] == "Hello there"


async def test_chat_stream_with_usage(server, auth, token):
    stream = await sdk(server, token).chat.completions.create(
        model="offline/simulated",
        messages=[{"role": "user", "content": "Stream it"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1
    generation_id = chunks[0].id.removeprefix("chatcmpl-")
    assert (await auth.get(f"/generations/{generation_id}")).json()["content"] == text


async def test_chat_stream_without_usage_and_stop_sequence(server, token):
    client = sdk(server, token)
    stream = await client.chat.completions.create(
        model="offline/simulated", messages=[{"role": "user", "content": "cut me"}], stream=True, stop=["You wrote"]
    )
    chunks = [c async for c in stream]
    assert all(c.usage is None for c in chunks) and chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.startswith("**Simulated reply**") and "You wrote" not in text


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"n": 2}, None),
        ({"messages": []}, "messages"),
        ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]}, None),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}, None),
        ({"messages": [{"role": "assistant", "content": "no user turn"}]}, None),
    ],
)
async def test_chat_refusals_are_bad_requests(server, token, kwargs, param):
    args = {"model": "offline/simulated", "messages": [{"role": "user", "content": "hi"}], **kwargs}
    with pytest.raises(openai.BadRequestError) as err:
        await sdk(server, token).chat.completions.create(**args)
    assert err.value.status_code == 400
    assert err.value.body["type"] == "invalid_request_error" and err.value.body["code"]
    if param:
        assert err.value.body["param"] == param


async def test_unknown_model_is_not_found(server, token):
    with pytest.raises(openai.NotFoundError) as err:
        await sdk(server, token).chat.completions.create(
            model="offline/nope", messages=[{"role": "user", "content": "hi"}]
        )
    assert err.value.body["code"] == "unknown_model"


async def test_native_error_body_unchanged(auth):
    r = await auth.post("/chat", json={"message": ""})
    assert r.status_code == 422 and set(r.json()) == {"code", "detail"}


async def test_a_deleted_users_token_is_refused(server, token):
    from sqlalchemy import delete

    from models.db import User

    async with server.services.db.sessionmaker() as db:
        await db.execute(delete(User))
        await db.commit()
    client = sdk(server, token)
    for call in (
        lambda: client.chat.completions.create(model="offline/simulated", messages=[{"role": "user", "content": "hi"}]),
        lambda: client.responses.create(model="offline/simulated", input="hi"),
    ):
        with pytest.raises(openai.AuthenticationError) as err:
            await call()
        assert err.value.body["code"] == "invalid_token"


async def test_an_api_key_works_until_revoked(server, client, token):
    key = await create_key(client, token, name="sdk")
    keyed = sdk(server, key["key"])
    completion = await keyed.chat.completions.create(
        model="offline/simulated", messages=[{"role": "user", "content": "hi"}]
    )
    assert completion.choices[0].finish_reason == "stop"
    r = await client.delete(f"/api-keys/{key['id']}", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 204
    for call in (
        lambda: keyed.models.list(),
        lambda: keyed.chat.completions.create(model="offline/simulated", messages=[{"role": "user", "content": "hi"}]),
        lambda: keyed.responses.create(model="offline/simulated", input="hi"),
    ):
        with pytest.raises(openai.AuthenticationError) as err:
            await call()
        assert err.value.body["code"] == "invalid_api_key"
