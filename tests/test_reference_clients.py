"""Each reference design's documented client flow, written as its README uses it
(the reference designs' seed clients), with the one addition this service requires: a bearer token."""

import asyncio

from tests.support import WS, read_sse, text_of


async def test_seed_000_websocket_chat_without_session_id(server, token):
    """`ws://localhost:{port}/ws`, send messages consecutively without waiting: all get replies."""
    async with WS.connect(f"{server.ws_base}/ws", token) as ws:
        assert (await ws.recv())["type"] == "session"
        for text in ("first", "second", "third"):
            await ws.send(text)  # plain text, as the seed's index.html sends it
        frames = []
        async with asyncio.timeout(20):
            while sum(f["type"] == "done" for f in frames) < 3:
                frames.append(await ws.recv())
    assert sum(f["type"] == "accepted" for f in frames) == 3
    assert all(f["status"] == "completed" for f in frames if f["type"] == "done")


async def test_seed_001_api_v1_chat_help_health(auth):
    """`GET /api/v1/health`, `GET /api/v1/help`, `POST /api/v1/chat`."""
    assert (await auth.get("/api/v1/health")).json()["status"] == "ok"
    assert any(m["id"] == "offline/simulated" for m in (await auth.get("/api/v1/help")).json()["models"])
    r = await auth.post("/api/v1/chat", json={"message": "hello"})
    assert r.status_code == 200 and r.json()["status"] == "completed"


async def test_seed_002_token_set_llm_chat_and_ws(server, client, token):
    """POST /token (form), POST /set-llm, POST /chat, then ws://.../ws/{session_id} plain text."""
    headers = {"Authorization": f"Bearer {token}"}
    r = await client.post(
        "/set-llm",
        headers=headers,
        json={"model_name": "offline/simulated", "temperature": 0.8, "max_tokens": 2000, "top_p": 0.95},
    )
    sid = r.json()["session_id"]
    r = await client.post(
        "/chat", headers=headers, json={"session_id": sid, "message": "Hello, how can you help me today?"}
    )
    assert r.json()["response"]
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send("Hello, how can you help me today?")
        gen = (await ws.recv())["generation_id"]
        frames = await ws.until_done(gen)
    assert all("chunk" in f for f in frames[:-1])  # {"chunk": "..."} as the seed documents, plus ids
    assert "| your message number in this chat | 2 |" in text_of(frames)  # history kept for context


async def test_seed_003_curl_chat_stream_and_stream_by_session(auth):
    """`curl -N -X POST /chat -d '{"message": ...}'` streamed; `GET /stream/{session_id}`; /health; /test."""
    async with auth.stream(
        "POST", "/chat", json={"message": "Bonjour !"}, headers={"Accept": "text/event-stream"}
    ) as r:
        sid = r.headers["X-Session-ID"]
        events = await read_sse(r)
    assert events[0] == {"type": "session", "session_id": sid, "_id": None, "_event": "session"}
    assert events[-1]["type"] == "done"
    async with auth.stream("GET", f"/stream/{sid}") as r:
        replay = await read_sse(r)
    assert text_of(replay) == text_of(events[2:])
    assert (await auth.get("/health")).status_code == 200
    assert (await auth.get("/test")).json()["ok"] is True


async def test_seed_004_submit_then_stream_by_job_id(auth, client):
    """POST /chat returns a job id, then SSE /stream/{job_id}; GET /models; GET / serves the UI."""
    r = await auth.post("/chat", json={"message": "Explain microservices", "background": True})
    assert r.status_code == 202
    job = r.json()["generation_id"]
    async with auth.stream("GET", f"/stream/{job}") as s:
        events = await read_sse(s)
    assert events[-1]["type"] == "done" and text_of(events)
    assert (await client.get("/models")).json()["data"]
    page = await client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
