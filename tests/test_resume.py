"""Durable generations: disconnects never cancel, resume from any seq on both transports
(PROTOCOL.md, Generation lifecycle, SSE, WebSocket)."""

import asyncio
import random

import httpx
import pytest

from tests.support import WS, Server, eventually, make_settings, new_session, read_sse, register, text_of

N = 12
EXPECTED = "".join(f"t{i} " for i in range(N))


async def _json(request) -> dict:
    return (await request).json()


async def behave(fake, **options):
    async with httpx.AsyncClient() as c:
        await c.post(f"{fake.base_url}/_fake/behaviour", json=options)


async def wait_status(client, generation_id, statuses=("completed", "cancelled", "incomplete", "failed"), timeout=15):
    async with asyncio.timeout(timeout):
        while True:
            body = (await client.get(f"/generations/{generation_id}")).json()
            if body["status"] in statuses:
                return body
            await asyncio.sleep(0.05)


async def finished_generation(upstream, up, fake) -> str:
    sid = await new_session(up, upstream.token)
    await behave(fake, n=N)
    return (await up.post("/chat", json={"session_id": sid, "message": "go"})).json()["generation_id"]


async def test_disconnect_mid_answer_never_cancels(upstream, up, fake):
    await behave(fake, n=40, tps=200)
    sid = await new_session(up, upstream.token)
    cut = random.randint(1, 30)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("long answer please")
        gen = (await ws.recv())["generation_id"]
        seen = [await ws.recv() for _ in range(cut)]
    assert [f["seq"] for f in seen] == list(range(1, cut + 1))
    final = await wait_status(up, gen)
    assert final["status"] == "completed"
    assert final["content"] == "".join(f"t{i} " for i in range(40))
    assert final["content"].startswith(text_of(seen)) and final["last_seq"] == 41


@pytest.mark.parametrize("after", [0, 5, N, N + 1])
async def test_ws_resume_at_every_boundary(upstream, up, fake, after):
    gen = await finished_generation(upstream, up, fake)
    async with WS.connect(
        f"{upstream.ws_base}/ws/{(await up.get(f'/generations/{gen}')).json()['session_id']}", upstream.token
    ) as ws:
        await ws.send({"type": "resume", "generation_id": gen, "after_seq": after})
        if after > N:
            await ws.send({"type": "ping"})
            assert (await ws.recv())["type"] == "pong"  # nothing after done
            return
        frames = await ws.until_done(gen)
    assert [f["seq"] for f in frames] == list(range(after + 1, N + 2))
    assert EXPECTED[: sum(len(f"t{i} ") for i in range(after))] + text_of(frames, after=after) == EXPECTED


@pytest.mark.parametrize("after", [0, 5, N, N + 1])
async def test_sse_resume_at_every_boundary(upstream, up, fake, after):
    gen = await finished_generation(upstream, up, fake)
    for how in ({"params": {"after": after}}, {"headers": {"Last-Event-ID": str(after)}}):
        async with up.stream("GET", f"/generations/{gen}/events", **how) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-accel-buffering"] == "no"
            events = await read_sse(r)
        assert [int(e["_id"]) for e in events] == list(range(after + 1, N + 2))
        assert all(e["_event"] == e["type"] for e in events)


async def test_resume_while_running_on_both_transports(upstream, up, fake):
    await behave(fake, n=30, tps=60)
    sid = await new_session(up, upstream.token)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("go")
        gen = (await ws.recv())["generation_id"]
        first = [await ws.recv() for _ in range(4)]
    async with up.stream("GET", f"/stream/{gen}", headers={"Last-Event-ID": "4"}) as r:
        middle = await read_sse(r, limit=6)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send({"type": "resume", "generation_id": gen, "after_seq": 10})
        rest = await ws.until_done(gen)
    text = text_of(first) + text_of(middle, after=4) + text_of(rest, after=10)
    assert text == "".join(f"t{i} " for i in range(30)) == (await up.get(f"/generations/{gen}")).json()["content"]


async def test_expired_log_resumes_from_a_stored_snapshot(tmp_path, fake):
    settings = make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="k",
        default_model="openai/fake-model",
        stream_log_ttl=0.05,
    )
    server = await Server(settings).start()
    try:
        async with server.client() as c:
            token = await register(c, "ivan")
        async with server.client(token) as c:
            await behave(fake, n=N)
            sid = await new_session(c, token)
            gen = (await c.post("/chat", json={"session_id": sid, "message": "go"})).json()["generation_id"]
            await asyncio.sleep(0.2)
            async with c.stream("GET", f"/generations/{gen}/events", params={"after": 3}) as r:
                events = await read_sse(r)
            assert [e["type"] for e in events] == ["snapshot", "done"]
            assert events[0]["content"] == EXPECTED and events[0]["seq"] == N and events[1]["seq"] == N + 1
            async with c.stream("GET", f"/generations/{gen}/events", params={"after": N}) as r:
                assert [e["type"] for e in await read_sse(r)] == ["done"]
    finally:
        await server.stop()


async def test_slow_reader_falls_behind_and_continues_from_a_snapshot(tmp_path, fake):
    settings = make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="k",
        default_model="openai/fake-model",
        stream_log_max_frames=16,
    )
    server = await Server(settings).start()
    try:
        async with server.client() as c:
            token = await register(c, "judy")
        async with server.client(token) as c:
            await behave(fake, n=100)
            sid = await new_session(c, token)
            gen = (await c.post("/chat", json={"session_id": sid, "message": "go"})).json()["generation_id"]
            async with c.stream("GET", f"/generations/{gen}/events", params={"after": 2}) as r:
                events = await read_sse(r)
        assert events[0]["type"] == "snapshot" and events[0]["seq"] == 100
        assert text_of(events) == "".join(f"t{i} " for i in range(100))
    finally:
        await server.stop()


async def test_post_chat_streams_sse_and_background_then_stream(auth, token):
    sid = await new_session(auth, token)
    async with auth.stream(
        "POST", "/chat", json={"session_id": sid, "message": "sse please"}, headers={"Accept": "text/event-stream"}
    ) as r:
        gen = r.headers["X-Generation-ID"]
        events = await read_sse(r)
    assert events[0]["type"] == "accepted" and events[0]["_id"] is None
    assert events[-1]["type"] == "done" and events[-1]["generation_id"] == gen
    assert text_of(events[1:]) == (await auth.get(f"/generations/{gen}")).json()["content"]

    r = await auth.post("/chat", json={"message": "later", "background": True})
    assert r.status_code == 202
    body = r.json()
    assert body["status"] == "queued" and len(body["generation_id"]) == 26
    async with auth.stream("GET", f"/stream/{body['generation_id']}") as s:
        events = await read_sse(s)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    async with auth.stream("GET", f"/stream/{body['session_id']}") as s:  # a session id: its latest
        assert (await read_sse(s))[-1]["generation_id"] == body["generation_id"]


async def test_generation_state_while_running(upstream, up, fake):
    await behave(fake, n=200, tps=100)
    sid = await new_session(up, upstream.token)
    gen = (await up.post("/chat", json={"session_id": sid, "message": "go", "background": True})).json()[
        "generation_id"
    ]
    body = await eventually(lambda: _json(up.get(f"/generations/{gen}")), lambda b: b["last_seq"] > 0)
    assert body["status"] == "running" and body["last_seq"] > 0
    assert body["content"] == "".join(f"t{i} " for i in range(body["last_seq"]))
    assert set(body) >= {
        "id",
        "session_id",
        "status",
        "finish_reason",
        "content",
        "last_seq",
        "usage",
        "created_at",
        "finished_at",
    }
    await up.post(f"/generations/{gen}/cancel")


async def test_stalled_reader_never_slows_the_generation_or_other_readers(upstream, up, fake):
    await behave(fake, n=20_000)  # ~2 MB of frames: far more than the socket buffers hold
    sid = await new_session(up, upstream.token, max_tokens=30_000)
    async with (
        WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token, max_queue=1) as stalled,
        WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as live,
    ):
        await stalled.send("go")
        gen = (await stalled.recv())["generation_id"]  # then it stops reading
        await live.send({"type": "resume", "generation_id": gen, "after_seq": 0})
        live_frames = await live.until_done(gen, timeout=60)
        stored = (await up.get(f"/generations/{gen}")).json()
        assert stored["status"] == "completed" and text_of(live_frames) == stored["content"]
        late = await stalled.until_done(gen, timeout=60)  # it catches up, via a snapshot if need be
    assert text_of(late) == stored["content"]
