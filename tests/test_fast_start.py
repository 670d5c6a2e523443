"""The fast start of the embedded mode: a message into an idle session is stored and claimed
in one transaction. Sends racing into one idle session must still give exactly one running
answer and a queue in submission order, on SQLite (one writer thread) and on PostgreSQL
(the session row is locked first), and every answer must run, in order."""

import asyncio

import pytest

from services.container import build
from tests.scaleout_support import Namespace, new_chat
from tests.support import make_settings

MODEL = "openai/fake-model@tps=40,n=8"  # 0.2 s each: none ends while the test looks


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.scaleout)])
async def services(request, tmp_path, fake):
    ns = await Namespace("fast").acreate() if request.param == "postgresql" else None
    settings = make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        database_url=ns.database_url if ns else None,
    )
    api = build(settings)
    await api.start()
    try:
        yield api
    finally:
        await api.stop()
        if ns:
            await ns.adestroy()


async def test_sends_racing_into_an_idle_session_claim_exactly_one(services):
    chat = await new_chat(services, MODEL)
    accepted = await asyncio.gather(*(services.generations.submit(chat, f"message {i}") for i in range(6)))
    rows = [await services.store.get(a.generation_id) for a in accepted]
    assert sorted(a.position for a in accepted) == list(range(6))
    assert [r.status for r, a in sorted(zip(rows, accepted, strict=True), key=lambda p: p[1].position)] == [
        "running"
    ] + ["queued"] * 5
    for a in sorted(accepted, key=lambda a: a.position):
        await asyncio.wait_for(services.generations.wait_done(a.generation_id), 20)
    done = [await services.store.get(a.generation_id) for a in sorted(accepted, key=lambda a: a.position)]
    assert [r.status for r in done] == ["completed"] * 6
    starts = [r.started_at for r in done]
    ends = [r.finished_at for r in done]
    # one at a time, in order: each starts after the previous one ended
    assert all(ends[i] <= starts[i + 1] for i in range(5)), (starts, ends)


async def test_a_send_whose_caller_is_cancelled_still_runs(services):
    """Once stored (and maybe claimed), a turn reaches the dispatcher even if the caller is
    cancelled meanwhile (a handler torn down mid-send): it must not sit 'running' forever."""
    chat = await new_chat(services, MODEL)
    task = asyncio.create_task(services.generations.submit(chat, "orphan"))
    await asyncio.sleep(0)  # the store's transaction is under way
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(20):
        while (row := await services.store.latest(chat.id)) is None or row.status in ("queued", "running"):
            await asyncio.sleep(0.05)
    assert row.status == "completed" and row.content


async def test_a_queued_send_delivered_before_the_claimed_one_ahead_of_it_still_runs(services):
    """Sends racing on PostgreSQL can reach the dispatcher out of order: the queued second
    before the first, claimed when it was stored. Neither may be stranded or run early."""
    chat = await new_chat(services, MODEL)
    store, dispatch = services.store, services.dispatch
    first = await store.create_turn(chat, "first", None, claim_for=dispatch.claimer(chat.id))
    second = await store.create_turn(chat, "second", None, claim_for=dispatch.claimer(chat.id))
    assert first.job is not None and second.job is None and second.position == 1
    for turn in (second, first):  # delivered in the wrong order, the first well after
        await services.log.create(turn.generation_id)
        await dispatch.submit(chat.id, turn.generation_id, turn.job)
        await asyncio.sleep(0.3)  # the drainer woken for the second looks and finds it blocked
    async with asyncio.timeout(20):
        for turn in (first, second):
            await services.generations.wait_done(turn.generation_id)
    a, b = (await store.get(first.generation_id)), (await store.get(second.generation_id))
    assert a.status == b.status == "completed" and a.finished_at <= b.started_at
