"""The OpenAI SDK against the scale-out mode: two API replicas and two workers (real
subprocesses on PostgreSQL, Redis and RabbitMQ) in front of the fake upstream. A response
started on one replica is followed on the other, dropped and resumed after a sequence
number on the first; cancel and ownership cross replicas."""

import time

import httpx
import openai
import pytest

from tests.support import register
from tests.test_openai_sdk import poll

# The cluster fixture is module-scoped: this module gets a cluster of its own. The import is
# its registration here, so each parameter named after it redefines the name (F811, noqa'd).
from tests.test_scaleout_cluster import behave, cluster, expected  # noqa: F401

MODEL = "openai/fake-model"


async def token_for(cluster) -> str:  # noqa: F811
    async with httpx.AsyncClient(base_url=cluster.a.base, timeout=30) as client:
        return await register(client, f"oai{time.monotonic_ns()}")


@pytest.fixture
async def sdk():
    """`sdk(replica, token)`: an SDK client on one replica, closed after the test."""
    made: list[openai.AsyncOpenAI] = []

    def make(proc, token: str) -> openai.AsyncOpenAI:
        made.append(openai.AsyncOpenAI(base_url=proc.base + "/v1", api_key=token, max_retries=0, timeout=30))
        return made[-1]

    yield make
    for client in made:
        await client.close()


async def test_response_resumed_on_the_other_replica(cluster, fake, sdk):  # noqa: F811
    await behave(fake, tps=60, n=60)
    token = await token_for(cluster)
    a, b = sdk(cluster.a, token), sdk(cluster.b, token)
    created = await a.responses.create(model=MODEL, input="hello", background=True)
    stream = await b.responses.retrieve(created.id, stream=True)
    seen = []
    async for event in stream:
        seen.append(event)
        if event.type == "response.output_text.delta" and event.sequence_number >= 15:
            break
    await stream.close()
    k = seen[-1].sequence_number
    rest = [e async for e in await a.responses.retrieve(created.id, stream=True, starting_after=k)]
    assert [e.sequence_number for e in seen + rest] == list(range(len(seen) + len(rest)))
    text = "".join(e.delta for e in seen + rest if e.type == "response.output_text.delta")
    assert text == expected(60) == rest[-1].response.output_text
    assert rest[-1].type == "response.completed"
    assert (await b.responses.retrieve(created.id)).output_text == text


async def test_chat_stream_models_and_ownership_on_replicas(cluster, fake, sdk):  # noqa: F811
    await behave(fake, n=12)
    token = await token_for(cluster)
    b = sdk(cluster.b, token)
    assert MODEL in [m.id async for m in b.models.list()]
    stream = await b.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == expected(12)
    assert chunks[-1].usage.completion_tokens == 12
    mine = await b.responses.create(model=MODEL, input="mine")
    other = sdk(cluster.a, await token_for(cluster))
    with pytest.raises(openai.NotFoundError):
        await other.responses.retrieve(mine.id)


async def test_cancel_on_the_other_replica(cluster, fake, sdk):  # noqa: F811
    await behave(fake, tps=20, n=400)
    token = await token_for(cluster)
    a, b = sdk(cluster.a, token), sdk(cluster.b, token)
    created = await a.responses.create(model=MODEL, input="long", background=True)
    await poll(lambda: b.responses.retrieve(created.id), lambda r: len(r.output_text) > 10)
    cancelled = await b.responses.cancel(created.id)
    assert cancelled.status == "cancelled" and cancelled.output_text.startswith("t0 t1 ")
    final = await poll(lambda: a.responses.retrieve(created.id), lambda r: r.status == "cancelled")
    assert final.output_text == cancelled.output_text
