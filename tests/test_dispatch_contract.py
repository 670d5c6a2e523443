"""The job dispatch contract, run against both paths: LocalDispatch (embedded) and the
scale-out path (an API-side RabbitDispatch plus two in-test workers on PostgreSQL, Redis
and RabbitMQ). Submit streams and stores, a session runs one generation at a time in
submission order, cancel stops the upstream request wherever the generation runs."""

import asyncio
import itertools
import json
from datetime import timedelta

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import update

from models.db import ChatSession, Message, utcnow
from services.container import build
from services.streaming import frames
from tests.scaleout_support import Namespace, new_chat, unique
from tests.support import make_settings, text_of

pytestmark = pytest.mark.asyncio(loop_scope="module")

FAST = "openai/fake-model@tps=200,n=12"
SLOW = "openai/fake-model@tps=15,n=400"


class Harness:
    def __init__(self, kind, api, workers, fake, ns=None, tmp=None):
        self.kind, self.api, self.workers, self.fake, self.ns, self.tmp = kind, api, workers, fake, ns, tmp

    async def session(self, model: str = FAST) -> ChatSession:
        return await new_chat(self.api, model)

    async def frames_of(self, generation_id: str, after: int = 0, timeout: float = 20) -> list[dict]:
        out: list[dict] = []

        async def send(batch) -> None:  # a transport's send, through the relay they all use
            out.extend(json.loads(frame.data) for frame in batch)

        async with asyncio.timeout(timeout):
            await self.api.generations.relay(generation_id, after, send)
        return out

    async def row(self, generation_id: str) -> Message:
        return await self.api.store.get(generation_id)

    async def upstream(self) -> dict:
        async with httpx.AsyncClient() as client:
            return (await client.get(f"{self.fake.base_url}/_fake/stats")).json()


def fake_settings(fake, tmp, **values):
    return make_settings(
        tmp,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        **values,
    )


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=["local", pytest.param("rabbit", marks=pytest.mark.scaleout)]
)
async def harness(request, fake_upstream, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(request.param)
    httpx.post(f"{fake_upstream.base_url}/_fake/reset")  # whatever an earlier module left set
    if request.param == "local":
        api = build(fake_settings(fake_upstream, tmp))
        await api.start()
        yield Harness("local", api, [], fake_upstream, tmp=tmp)
        await api.stop()
        return
    from services.scaleout.worker import Worker

    ns = await Namespace("dispatch").acreate()
    common = dict(
        database_url=ns.database_url,
        redis_url=ns_redis(),
        rabbitmq_url=ns_rabbit(),
        redis_key_prefix=ns.prefix,
        rabbitmq_queue=ns.queue,
        worker_heartbeat_timeout=3.0,
        reaper_interval=1.0,
        worker_shutdown_grace=1.0,
    )
    api = build(fake_settings(fake_upstream, tmp, **common))
    await api.start()
    workers = [Worker(fake_settings(fake_upstream, tmp, **common), worker_id=f"w{i}") for i in (1, 2)]
    for worker in workers:
        await worker.start()
    yield Harness("rabbit", api, workers, fake_upstream, ns, tmp)
    for worker in workers:
        await worker.shutdown()
    await api.stop()
    await ns.adestroy()


def ns_redis():
    from tests.scaleout_support import REDIS_URL

    return REDIS_URL


def ns_rabbit():
    from tests.scaleout_support import RABBITMQ_URL

    return RABBITMQ_URL


async def test_submit_streams_and_stores(harness):
    chat = await harness.session()
    accepted = await harness.api.generations.submit(chat, "hello")
    assert accepted.created and accepted.position == 0
    got = await harness.frames_of(accepted.generation_id)
    assert [f["seq"] for f in got] == list(range(1, 14))
    assert got[-1]["type"] == "done" and got[-1]["status"] == "completed"
    row = await harness.row(accepted.generation_id)
    assert row.status == "completed" and row.content == text_of(got) == "".join(f"t{i} " for i in range(12))
    assert row.last_seq == 13
    # a finished generation can still be followed from any seq
    assert [f["seq"] for f in await harness.frames_of(accepted.generation_id, after=10)] == [11, 12, 13]


async def test_one_generation_per_session_in_submission_order(harness):
    chats = [await harness.session("openai/fake-model@tps=100,n=10") for _ in range(3)]
    submitted = {}
    for i in range(4):  # interleaved across sessions, as clients would send them
        for chat in chats:
            submitted.setdefault(chat.id, []).append(
                (await harness.api.generations.submit(chat, f"m{i}")).generation_id
            )
    for ids in submitted.values():
        for generation_id in ids:
            assert (await harness.frames_of(generation_id))[-1]["status"] == "completed"
    workers = set()
    for ids in submitted.values():
        rows = [await harness.row(g) for g in ids]
        for earlier, later in itertools.pairwise(rows):
            assert earlier.finished_at <= later.started_at, "a session ran two generations at once or out of order"
        workers |= {r.worker_id for r in rows}
    if harness.kind == "rabbit":  # the broker spreads the sessions over both workers
        assert workers == {"w1", "w2"}


async def test_each_generation_sees_the_previous_answers(harness):
    chat = await harness.session("openai/fake-model@tps=200,n=5")
    ids = [(await harness.api.generations.submit(chat, f"question {i}")).generation_id for i in range(3)]
    for generation_id in ids:
        await harness.frames_of(generation_id)
    last = (await harness.upstream())["last_request"]
    contents = [m["content"] for m in last["messages"]]
    assert contents == ["question 0", "t0 t1 t2 t3 t4 ", "question 1", "t0 t1 t2 t3 t4 ", "question 2"]


async def test_cancel_running_stops_the_upstream_request(harness):
    chat = await harness.session(SLOW)
    accepted = await harness.api.generations.submit(chat, "long")
    seen: list[dict] = []

    async def send(batch) -> None:  # a client that reads three frames and goes away
        for frame in batch:
            seen.append(json.loads(frame.data))
            if len(seen) == 3:
                raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        async with asyncio.timeout(20):
            await harness.api.generations.relay(accepted.generation_id, 0, send)
    before = await harness.upstream()
    row = await harness.api.generations.cancel(accepted.generation_id, chat.user_id)
    assert row.status == "cancelled" and row.finish_reason == "cancelled"
    rest = await harness.frames_of(accepted.generation_id, after=3)
    assert rest[-1]["type"] == "done" and rest[-1]["status"] == "cancelled"
    assert row.content == text_of(seen + rest) and rest[-1]["seq"] == row.last_seq
    for _ in range(40):  # the upstream connection is closed, not left streaming
        stats = await harness.upstream()
        if stats["disconnected"] > before["disconnected"] and stats["active"] == 0:
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail(f"upstream request still open: {stats}")


async def test_cancel_queued_never_runs(harness):
    chat = await harness.session(SLOW)
    first = await harness.api.generations.submit(chat, "long")
    second = await harness.api.generations.submit(chat, "queued")
    assert second.position == 1
    row = await harness.api.generations.cancel(second.generation_id, chat.user_id)
    assert row.status == "cancelled" and row.started_at is None
    assert (await harness.frames_of(second.generation_id)) == [
        {
            "type": "done",
            "generation_id": second.generation_id,
            "seq": 1,
            "status": "cancelled",
            "finish_reason": "cancelled",
            "usage": {"prompt_tokens": 0, "completion_tokens": 0},
        }
    ]
    assert (await harness.row(first.generation_id)).status in ("queued", "running")
    await harness.api.generations.cancel(first.generation_id, chat.user_id)
    await asyncio.sleep(0.3)
    assert (await harness.row(second.generation_id)).started_at is None


# scale-out only

scaleout_only = pytest.mark.parametrize("harness", [pytest.param("rabbit", marks=pytest.mark.scaleout)], indirect=True)


@scaleout_only
async def test_reaper_ends_a_dead_workers_generation_from_the_log(harness):
    """A generation left running by a worker that died: the reaper ends it failed /
    interrupted with the text in the Redis log (ahead of the last flush), once."""
    chat = await harness.session(SLOW)
    gen = await _ghost_generation(harness, chat)
    log = harness.api.log
    text = ""
    for seq in range(1, 6):
        text += f"g{seq} "
        await log.append(gen, frames.chunk(gen, seq, f"g{seq} "), f"g{seq} ")
    async with harness.api.db.sessionmaker() as db:  # flushed 2 chunks, then went silent
        await db.execute(
            update(Message)
            .where(Message.id == gen)
            .values(content="g1 g2 ", last_seq=2, heartbeat_at=utcnow() - timedelta(seconds=60))
        )
        await db.commit()
    follower = asyncio.create_task(harness.frames_of(gen, after=2))
    await harness.api.reaper.run_once()  # this one, or a worker's reaper running meanwhile
    got = await asyncio.wait_for(follower, 10)
    assert [f["seq"] for f in got] == [3, 4, 5, 6]
    done = got[-1]
    assert (
        done["status"] == "failed" and done["finish_reason"] == "interrupted" and done["error"]["code"] == "interrupted"
    )
    row = await harness.row(gen)
    assert (row.status, row.finish_reason, row.content, row.last_seq) == ("failed", "interrupted", text, 6)
    assert await harness.api.reaper.run_once() == 0  # ended once: nothing left to do
    assert [f["seq"] for f in await harness.frames_of(gen, after=0)] == [1, 2, 3, 4, 5, 6]


async def _ghost_generation(harness, chat) -> str:
    """A generation claimed by a worker that does not exist (no job is published)."""
    turn = await harness.api.store.create_turn(chat, "ghost", None)
    gen = turn.generation_id
    await harness.api.log.create(gen)
    assert await harness.api.store.claim(gen, "ghost-worker") is not None
    return gen


@scaleout_only
async def test_worker_shutdown_requeues_unstarted_jobs(harness):
    """SIGTERM path: running generations get the grace period then end interrupted; jobs not
    started go back to the queue and another worker runs them, in order."""
    from services.scaleout.worker import Worker

    ns = harness.ns
    queue = unique("dispatch.shutdown")
    common = dict(
        database_url=ns.database_url,
        redis_url=ns_redis(),
        rabbitmq_url=ns_rabbit(),
        redis_key_prefix=ns.prefix,
        rabbitmq_queue=queue,
        worker_heartbeat_timeout=3.0,
        reaper_interval=1.0,
        worker_shutdown_grace=0.5,
    )
    api = build(fake_settings(harness.fake, harness.tmp, **common))
    await api.start()
    first = Worker(fake_settings(harness.fake, harness.tmp, **common), worker_id="shutdown-1")
    await first.start()
    try:
        chat = await harness.session(SLOW)
        long = await api.generations.submit(chat, "long")
        nxt = await api.generations.submit(chat, "next")
        async with asyncio.timeout(10):
            while (await api.store.get(long.generation_id)).status != "running":
                await asyncio.sleep(0.05)
        await first.shutdown()
        row = await api.store.get(long.generation_id)
        assert (row.status, row.finish_reason) == ("failed", "interrupted")
        assert (await api.store.get(nxt.generation_id)).status == "queued"
        second = Worker(fake_settings(harness.fake, harness.tmp, **common), worker_id="shutdown-2")
        await second.start()
        try:
            async with asyncio.timeout(15):
                while (await api.store.get(nxt.generation_id)).status in ("queued",):
                    await asyncio.sleep(0.05)
            await api.generations.cancel(nxt.generation_id, chat.user_id)
            assert (await api.store.get(nxt.generation_id)).worker_id == "shutdown-2"
        finally:
            await second.shutdown()
    finally:
        await api.stop()
        from tests.scaleout_support import delete_queue

        await delete_queue(queue)
