"""The scale-out mode as it runs: two API replicas (uvicorn) and two workers
(`python -m worker`) as real subprocesses on PostgreSQL, Redis and RabbitMQ, against the fake
upstream. Clients move between replicas and resume by seq; cancel crosses replicas; a worker
killed with SIGKILL mid-stream ends its generation `interrupted` with exactly the text the
reader saw; a replica restarts under connected clients.

The cluster is started once for the module (a fresh database, key prefix and queue)."""

import asyncio
import signal
import time

import asyncpg
import httpx
import pytest
import websockets

from tests.scaleout_support import Namespace, Proc
from tests.support import WS, free_port, read_sse, register, text_of


def expected(n: int) -> str:
    return "".join(f"t{i} " for i in range(n))


class Cluster:
    def __init__(self, ns: Namespace, env: dict, log_dir):
        self.ns, self.env, self.log_dir = ns, env, log_dir
        self.apis = [Proc.api(f"api{i}", free_port(), env, log_dir) for i in (1, 2)]
        self.workers = [Proc.worker(f"worker{i}", env, log_dir) for i in (1, 2)]

    @property
    def a(self) -> Proc:
        return self.apis[0]

    @property
    def b(self) -> Proc:
        return self.apis[1]

    def start(self) -> "Cluster":
        for proc in (*self.apis, *self.workers):
            proc.start()
        for proc in (*self.apis, *self.workers):
            proc.wait_ready()
        return self

    def stop(self) -> None:
        for proc in (*self.apis, *self.workers):
            proc.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(25)}" for p in (*self.apis, *self.workers))

    async def db(self, query: str, *args):
        conn = await asyncpg.connect(self.ns.database_url)
        try:
            return await conn.fetchrow(query, *args)
        finally:
            await conn.close()


@pytest.fixture(scope="module")
def cluster(fake_upstream, tmp_path_factory):
    ns = Namespace("cluster").setup()
    log_dir = tmp_path_factory.mktemp("cluster-logs")
    env = ns.env(
        OPENAI_BASE_URL=fake_upstream.openai_base_url,
        OPENAI_API_KEY="test-key",
        DEFAULT_MODEL="openai/fake-model",
        DATA_DIR=log_dir / "data",
        FLUSH_INTERVAL=0.25,
        WORKER_HEARTBEAT_TIMEOUT=2,
        REAPER_INTERVAL=1,
        WORKER_SHUTDOWN_GRACE=2,
        RABBITMQ_PREFETCH=8,
        SSE_PING_INTERVAL=2,
    )
    cluster = Cluster(ns, env, log_dir)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        ns.teardown()


@pytest.fixture
async def user(cluster, fake):
    async with httpx.AsyncClient(base_url=cluster.a.base, timeout=30) as client:
        token = await register(client, f"user{time.monotonic_ns()}")
    return token


def client(proc: Proc, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=proc.base, headers={"Authorization": f"Bearer {token}"}, timeout=30)


async def behave(fake, **options) -> None:
    async with httpx.AsyncClient() as c:
        assert (await c.post(f"{fake.base_url}/_fake/behaviour", json=options)).status_code == 200


async def stats(fake) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{fake.base_url}/_fake/stats")).json()


async def background(proc: Proc, token: str, message: str, session_id: str | None = None) -> dict:
    async with client(proc, token) as c:
        body = {"message": message, "background": True}
        if session_id:
            body["session_id"] = session_id
        r = await c.post("/chat", json=body)
        assert r.status_code == 202, r.text
        return r.json()


async def sse(
    proc: Proc, token: str, generation_id: str, after: int = 0, limit: int | None = None, timeout: float = 30
) -> list[dict]:
    async with client(proc, token) as c:
        headers = {"Last-Event-ID": str(after)} if after else {}
        async with asyncio.timeout(timeout):
            async with c.stream("GET", f"/generations/{generation_id}/events", headers=headers) as r:
                assert r.status_code == 200
                return await read_sse(r, limit=limit)


async def test_submit_on_a_stream_on_b_resume_on_a(cluster, user, fake):
    await behave(fake, tps=60, n=60)
    job = await background(cluster.a, user, "hello")
    gen = job["generation_id"]
    first = await sse(cluster.b, user, gen, limit=15)  # replica B, then the client goes away
    assert [f["seq"] for f in first] == list(range(1, 16))
    rest = await sse(cluster.a, user, gen, after=15)  # back on A, resuming by Last-Event-ID
    assert rest[0]["seq"] == 16 and rest[-1]["type"] == "done" and rest[-1]["status"] == "completed"
    assert text_of(first + rest) == expected(60)  # asserts no gap and no repeat on the way
    # WebSocket on B, resuming mid-way of the finished generation
    async with WS.connect(f"{cluster.b.ws_base}/ws/{job['session_id']}", user) as ws:
        await ws.send({"type": "resume", "generation_id": gen, "after_seq": 50})
        tail = await ws.until_done(gen)
    assert [f["seq"] for f in tail] == list(range(51, 62))
    async with client(cluster.b, user) as c:
        row = (await c.get(f"/generations/{gen}")).json()
    assert row["content"] == expected(60) and row["last_seq"] == 61 and row["status"] == "completed"


async def test_cancel_on_b_stops_the_generation_running_for_a(cluster, user, fake):
    await behave(fake, tps=20, n=400)
    job = await background(cluster.a, user, "long one")
    gen = job["generation_id"]
    reader = asyncio.create_task(sse(cluster.a, user, gen))
    async with client(cluster.b, user) as c:
        async with asyncio.timeout(10):
            while (await c.get(f"/generations/{gen}")).json()["last_seq"] < 3:
                await asyncio.sleep(0.05)
        before = await stats(fake)
        assert before["active"] == 1
        r = await c.post(f"/generations/{gen}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    got = await asyncio.wait_for(reader, 10)
    assert got[-1]["type"] == "done" and got[-1]["status"] == "cancelled"
    assert text_of(got) == r.json()["content"]
    async with asyncio.timeout(5):
        while (s := await stats(fake))["active"] or s["disconnected"] <= before["disconnected"]:
            await asyncio.sleep(0.05)
    assert s["completed"] == before["completed"]  # dropped, not streamed to its end


async def test_api_replica_restart_clients_resume(cluster, user, fake):
    await behave(fake, tps=30, n=120)
    async with client(cluster.b, user) as c:
        session_id = (await c.post("/set-llm", json={})).json()["session_id"]
    seen: list[dict] = []
    gen = None
    async with WS.connect(f"{cluster.a.ws_base}/ws/{session_id}", user) as ws:
        await ws.send({"type": "message", "content": "tell me a long story"})
        accepted = await ws.recv()
        gen = accepted["generation_id"]
        while len(seen) < 10:
            seen.append(await ws.recv())
        cluster.a.kill(signal.SIGTERM)  # graceful: sockets get 1001, the generation runs on
        with pytest.raises(websockets.ConnectionClosed) as closed:
            while True:
                frame = await ws.recv(timeout=15)
                if frame.get("generation_id") == gen:
                    seen.append(frame)
    assert closed.value.rcvd is None or closed.value.rcvd.code in (1001, 1012)
    assert cluster.a.proc.wait(15) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal it caught
    last = seen[-1]["seq"]
    assert last < 121, "the generation should still be running"
    # the client reconnects to the other replica and resumes after the last seq it saw
    async with WS.connect(f"{cluster.b.ws_base}/ws/{session_id}", user) as ws:
        await ws.send({"type": "resume", "generation_id": gen, "after_seq": last})
        rest = await ws.until_done(gen, timeout=30)
    assert rest[0]["seq"] == last + 1
    assert text_of(seen + rest) == expected(120)
    # replica A comes back on its port and serves resumes and new messages again
    cluster.apis[0] = Proc.api("api1-restarted", cluster.a.port, cluster.env, cluster.log_dir).start().wait_ready()
    again = await sse(cluster.a, user, gen, after=100)
    assert [f["seq"] for f in again] == list(range(101, 122))
    await behave(fake, tps=0, n=5)
    job = await background(cluster.a, user, "and another", session_id)
    assert text_of(await sse(cluster.a, user, job["generation_id"])) == expected(5)


async def test_worker_killed_mid_stream(cluster, user, fake):
    await behave(fake, tps=25, n=400)
    job = await background(cluster.a, user, "this one dies")
    gen = job["generation_id"]
    reader = asyncio.create_task(sse(cluster.b, user, gen, timeout=60))
    async with asyncio.timeout(10):
        while (
            not (row := await cluster.db("SELECT worker_id, last_seq FROM messages WHERE id = $1", gen))
            or row["last_seq"] < 5
        ):
            await asyncio.sleep(0.05)
    owner = next(w for w in cluster.workers if w.proc.pid == int(row["worker_id"].split("-")[-2]))
    survivor = next(w for w in cluster.workers if w is not owner)
    owner.kill(signal.SIGKILL)
    got = await asyncio.wait_for(reader, 30)
    done = got[-1]
    assert done["type"] == "done" and done["status"] == "failed" and done["finish_reason"] == "interrupted"
    seen_text = text_of(got)  # also asserts: no gap, nothing repeated
    stored = await cluster.db("SELECT status, finish_reason, content, last_seq FROM messages WHERE id = $1", gen)
    assert stored["content"] == seen_text and stored["last_seq"] == done["seq"]
    assert seen_text == expected(done["seq"] - 1)  # exactly the upstream's first tokens, once each
    assert len(seen_text) > 0
    # the job is not run again: a moment later nothing changed
    await asyncio.sleep(1.0)
    assert (await cluster.db("SELECT content, status FROM messages WHERE id = $1", gen))["content"] == seen_text
    # the survivor serves new messages, in this session and in a new one
    await behave(fake, tps=0, n=7)
    same = await background(cluster.b, user, "again", job["session_id"])
    other = await background(cluster.a, user, "elsewhere")
    for follow_up in (same, other):
        frames = await sse(cluster.a, user, follow_up["generation_id"])
        assert frames[-1]["status"] == "completed" and text_of(frames) == expected(7)
        row = await cluster.db("SELECT worker_id FROM messages WHERE id = $1", follow_up["generation_id"])
        assert row["worker_id"].split("-")[-2] == str(survivor.proc.pid)
    assert survivor.alive()


async def test_api_key_revoked_on_a_closes_its_socket_on_b(cluster, user, fake):
    """Revocation is in the shared database, not a replica's memory: a key revoked through A
    is refused by B at once, and B's socket opened with it closes 4401 at its next frame."""
    await behave(fake, n=5)
    async with client(cluster.a, user) as c:
        created = (await c.post("/api-keys", json={"name": "cluster"})).json()
        sid = (await c.post("/set-llm", json={})).json()["session_id"]
    async with WS.connect(f"{cluster.b.ws_base}/ws/{sid}", created["key"]) as ws:
        await ws.send({"type": "message", "content": "before"})
        accepted = await ws.recv()
        assert text_of(await ws.until_done(accepted["generation_id"])) == expected(5)
        async with client(cluster.a, user) as c:
            assert (await c.delete(f"/api-keys/{created['id']}")).status_code == 204
        await ws.send({"type": "message", "content": "after"})
        with pytest.raises(websockets.ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.conn.recv()
        assert closed.value.rcvd.code == 4401
    async with client(cluster.b, created["key"]) as c:
        assert (await c.get("/sessions")).status_code == 401
