"""The Responses API driven by the official `openai` Python SDK over real HTTP: streaming,
background, resume after a sequence number, cancel, previous_response_id, delete, and
ownership. The offline model is paced so that answers are still running when a test acts."""

import httpx
import openai
import pytest

from tests.support import make_settings, register
from tests.test_openai_sdk import poll, sdk

MODEL = "offline/simulated"


@pytest.fixture
def settings(tmp_path, request):
    return make_settings(tmp_path, time_between_chunks=0.01, **getattr(request, "param", {}))


def deltas(events) -> str:
    return "".join(e.delta for e in events if e.type == "response.output_text.delta")


async def test_stream_events_in_order_and_contiguous(server, auth, token):
    client = sdk(server, token)
    events = [e async for e in await client.responses.create(model=MODEL, input="Hello", stream=True)]
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    assert final.status == "completed" and final.output_text == deltas(events) == events[-4].text
    assert final.usage.output_tokens > 0
    stored = (await auth.get(f"/generations/{final.id.removeprefix('resp_')}")).json()
    assert stored["content"] == final.output_text
    again = await client.responses.retrieve(final.id)
    assert again.status == "completed" and again.output_text == final.output_text


async def test_background_runs_without_a_client_and_resumes_after_k(server, token):
    client = sdk(server, token)
    created = await client.responses.create(model=MODEL, input="Write it in the background", background=True)
    assert created.status in ("queued", "in_progress") and created.background
    # A client that follows, then drops mid-answer, ...
    stream = await client.responses.retrieve(created.id, stream=True)
    seen = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta" and len(seen) >= 12:
            break
    await stream.close()
    k = seen[-1].sequence_number
    # ... resumes after the last event it had, and gets exactly the rest.
    rest = [e async for e in await client.responses.retrieve(created.id, stream=True, starting_after=k)]
    assert [e.sequence_number for e in rest] == list(range(k + 1, k + 1 + len(rest)))
    assert rest[-1].type == "response.completed"
    done = await poll(lambda: client.responses.retrieve(created.id), lambda r: r.status == "completed")
    assert deltas(seen) + deltas(rest) == done.output_text
    # Replaying the finished response from the same point gives the same events.
    replay = [e async for e in await client.responses.retrieve(created.id, stream=True, starting_after=k)]
    assert [(e.type, e.sequence_number) for e in replay] == [(e.type, e.sequence_number) for e in rest]
    assert deltas(replay) == deltas(rest)


async def test_cancel_keeps_the_text_and_is_idempotent(server, token):
    client = sdk(server, token)
    created = await client.responses.create(model=MODEL, input="x " * 2000, background=True)
    await poll(lambda: client.responses.retrieve(created.id), lambda r: len(r.output_text) > 20)
    cancelled = await client.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.output_text
    again = await client.responses.cancel(created.id)
    assert again.status == "cancelled" and again.output_text == cancelled.output_text
    events = [e async for e in await client.responses.retrieve(created.id, stream=True)]
    assert deltas(events) == cancelled.output_text and events[-1].response.status == "cancelled"


async def test_max_output_tokens_is_incomplete(server, token):
    events = [
        e
        async for e in await sdk(server, token).responses.create(
            model=MODEL, input="long", max_output_tokens=5, stream=True
        )
    ]
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


async def test_previous_response_id_continues_and_input_items(server, token):
    client = sdk(server, token)
    first = await client.responses.create(model=MODEL, input="first question", instructions="Be brief.")
    assert first.status == "completed" and "A system prompt of 9 characters" in first.output_text
    second = await client.responses.create(
        model=MODEL,
        previous_response_id=first.id,
        input=[{"role": "user", "content": [{"type": "input_text", "text": "second question"}]}],
    )
    assert "| your message number in this chat | 2 |" in second.output_text
    assert "A system prompt" not in second.output_text  # instructions are not carried over
    assert second.previous_response_id == first.id
    items = await client.responses.input_items.list(second.id)
    assert [(i.role, i.content[0].text) for i in items.data] == [("user", "second question")]


async def test_delete_then_not_found(server, token):
    client = sdk(server, token)
    created = await client.responses.create(model=MODEL, input="to delete")
    deleted = await client.responses.delete(created.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        await client.responses.retrieve(created.id)


async def test_another_users_response_is_not_found(server, client, token):
    mine = await sdk(server, token).responses.create(model=MODEL, input="mine")
    other = sdk(server, await register(client, "mallory"))
    errors = []
    for call in (
        lambda: other.responses.retrieve(mine.id),
        lambda: other.responses.cancel(mine.id),
        lambda: other.responses.delete(mine.id),
        lambda: other.responses.input_items.list(mine.id),
        lambda: other.responses.retrieve("resp_01ARZ3NDEKTSV4RRFFQ69G5FAV"),
        lambda: other.responses.create(model=MODEL, input="x", previous_response_id=mine.id),
    ):
        with pytest.raises(openai.NotFoundError) as err:
            await call()
        errors.append(err.value.body)
    assert errors[0]["code"] == errors[4]["code"] == "not_found"
    assert errors[0]["message"].replace(mine.id, "X") == errors[4]["message"].replace(
        "resp_01ARZ3NDEKTSV4RRFFQ69G5FAV", "X"
    )
    assert (await sdk(server, token).responses.retrieve(mine.id)).status == "completed"


async def test_provider_error_is_response_failed(upstream, fake):
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"status": 400})
    client = sdk(upstream, upstream.token)
    events = [e async for e in await client.responses.create(model="openai/fake-model", input="hi", stream=True)]
    assert events[-1].type == "response.failed"
    assert events[-1].response.error.code == "provider_bad_request"
    with pytest.raises(openai.APIStatusError) as err:
        await client.chat.completions.create(model="openai/fake-model", messages=[{"role": "user", "content": "hi"}])
    assert err.value.status_code == 502 and err.value.body["code"] == "provider_bad_request"


async def test_chat_stream_error_mid_answer_raises_api_error(upstream, fake):
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"error_after": 3})
    stream = await sdk(upstream, upstream.token).chat.completions.create(
        model="openai/fake-model", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    got = []
    with pytest.raises(openai.APIError) as err:
        async for chunk in stream:
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "t0 t1 t2 " and err.value.body["code"] == "upstream_error"


async def test_dropped_chat_stream_runs_on_and_is_followed_natively(server, auth, token):
    raw = await sdk(server, token).chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "keep going"}], stream=True
    )
    generation_id = raw.headers["x-generation-id"]
    stream, got = raw.parse(), ""
    async for chunk in stream:
        got += chunk.choices[0].delta.content or ""
        if len(got) > 30:
            break
    await stream.close()
    done = await poll(lambda: auth.get(f"/generations/{generation_id}"), lambda r: r.json()["status"] == "completed")
    assert done.json()["content"].startswith(got) and len(done.json()["content"]) > len(got)
    async with auth.stream("GET", f"/generations/{generation_id}/events", params={"after": 3}) as r:
        body = (await r.aread()).decode()
    assert "event: done" in body and "id: 4\n" in body


async def test_oversized_body_gets_the_openai_error_body(server, token):
    async with httpx.AsyncClient(base_url=server.base, headers={"Authorization": f"Bearer {token}"}) as c:
        r = await c.post(
            "/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x" * 1_100_000}]}
        )
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


async def test_stop_and_parameters_reach_the_upstream(upstream, fake):
    completion = await sdk(upstream, upstream.token).chat.completions.create(
        model="openai/fake-model",
        stop=["t5"],
        temperature=0.2,
        top_p=0.5,
        max_completion_tokens=7,
        messages=[
            {"role": "developer", "content": "Rules."},
            {"role": "user", "content": "a"},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ],
    )
    sent = httpx.get(f"{fake.base_url}/_fake/stats").json()["last_request"]
    assert sent["stop"] == ["t5"] and sent["temperature"] == 0.2 and sent["top_p"] == 0.5
    assert sent["max_tokens"] == 7
    assert [(m["role"], m["content"]) for m in sent["messages"]] == [
        ("system", "Rules."),
        ("user", "a"),
        ("assistant", "b"),
        ("user", "c"),
    ]
    assert completion.choices[0].finish_reason == "length"


@pytest.mark.parametrize("settings", [{"stream_log_ttl": 0.2}], indirect=True)
async def test_after_the_log_expired_the_numbers_are_the_same(server, token):
    client = sdk(server, token)
    live = [e async for e in await client.responses.create(model=MODEL, input="remember me", stream=True)]
    generation_id = live[-1].response.id.removeprefix("resp_")
    await poll(lambda: server.services.log.read(generation_id, 0), lambda result: result is None)
    last_delta = live[-5].sequence_number
    tail = [
        e async for e in await client.responses.retrieve(live[-1].response.id, stream=True, starting_after=last_delta)
    ]
    assert [(e.type, e.sequence_number) for e in tail] == [(e.type, e.sequence_number) for e in live[-4:]]
    assert tail[-1].response.output_text == live[-1].response.output_text
    whole = [e async for e in await client.responses.retrieve(live[-1].response.id, stream=True, starting_after=2)]
    assert [e.sequence_number for e in whole] == [3, last_delta, *range(last_delta + 1, last_delta + 5)]
    assert deltas(whole) == live[-1].response.output_text
    inside = [e async for e in await client.responses.retrieve(live[-1].response.id, stream=True, starting_after=6)]
    assert inside[0].type == "error" and inside[0].code == "resume_unavailable"


async def test_fallback_models_answer_when_the_primary_fails(upstream, fake):
    httpx.post(f"{fake.base_url}/_fake/behaviour", json={"status": 400})
    client = sdk(upstream, upstream.token)
    completion = await client.chat.completions.create(
        model="openai/fake-model",
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"fallback_models": ["offline/simulated"]},
    )
    assert completion.model == "offline/simulated" and "> hi" in completion.choices[0].message.content
    response = await client.responses.create(
        model="openai/fake-model", input="hi", extra_body={"fallback_models": ["offline/simulated"]}
    )
    assert response.status == "completed" and response.model == "offline/simulated"


async def test_continuing_a_running_response_is_a_conflict(server, token):
    client = sdk(server, token)
    running = await client.responses.create(model=MODEL, input="x " * 2000, background=True)
    with pytest.raises(openai.ConflictError) as err:
        await client.responses.create(model=MODEL, input="next", previous_response_id=running.id)
    assert err.value.body["code"] == "response_in_progress"
    await client.responses.cancel(running.id)
