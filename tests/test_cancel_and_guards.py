"""Cancel (queued, running, finished) and the guards against stuck and looping models."""

import asyncio

import httpx
import pytest

from tests.support import WS, Server, make_settings, new_session, register, text_of
from tests.test_resume import behave


async def upstream_stats(fake) -> dict:
    async with httpx.AsyncClient() as c:
        return (await c.get(f"{fake.base_url}/_fake/stats")).json()


async def wait_disconnected(fake, timeout=3.0) -> dict:
    async with asyncio.timeout(timeout):
        while True:
            stats = await upstream_stats(fake)
            if stats["disconnected"] >= 1 and stats["active"] == 0:
                return stats
            await asyncio.sleep(0.02)


async def test_cancel_running_closes_the_upstream_and_keeps_the_text(upstream, up, fake):
    await behave(fake, n=10_000, tps=50)
    sid = await new_session(up, upstream.token)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("go")
        gen = (await ws.recv())["generation_id"]
        seen = [await ws.recv() for _ in range(3)]
        await ws.send({"type": "cancel", "generation_id": gen})
        rest = await ws.until_done(gen)
    done = rest[-1]
    assert done["status"] == "cancelled" and done["finish_reason"] == "cancelled"
    stored = (await up.get(f"/generations/{gen}")).json()
    assert (
        stored["status"] == "cancelled"
        and stored["content"] == text_of(seen + rest)
        and stored["last_seq"] == done["seq"]
    )
    await wait_disconnected(fake)

    again = await up.post(f"/generations/{gen}/cancel")  # idempotent on a finished generation
    assert again.status_code == 200 and again.json() == stored


async def test_cancel_queued_before_it_starts_and_rest_goes_on(upstream, up, fake):
    await behave(fake, n=30, tps=100)
    sid = await new_session(up, upstream.token)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("one"), await ws.send("two"), await ws.send("three")
        frames, ids = [], []
        while len(ids) < 3:  # the first answer's chunks may already come between the acks
            frame = await ws.recv()
            ids.append(frame["generation_id"]) if frame["type"] == "accepted" else frames.append(frame)
        r = await up.post(f"/generations/{ids[1]}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled" and r.json()["content"] == ""
        async with asyncio.timeout(15):
            while sum(f["type"] == "done" for f in frames) < 3:
                frames.append(await ws.recv())
    dones = {f["generation_id"]: f for f in frames if f["type"] == "done"}
    assert dones[ids[1]]["seq"] == 1 and dones[ids[1]]["status"] == "cancelled"
    assert dones[ids[0]]["status"] == dones[ids[2]]["status"] == "completed"
    assert (await upstream_stats(fake))["requests"] == 2  # the cancelled one never reached the model


async def test_cancel_finished_changes_nothing(auth, token):
    sid = await new_session(auth, token)
    body = (await auth.post("/chat", json={"session_id": sid, "message": "hi"})).json()
    r = await auth.post(f"/generations/{body['generation_id']}/cancel")
    assert r.json()["status"] == "completed" and r.json()["content"] == body["response"]


async def test_cancel_someone_elses_generation_is_404(auth, token, client):
    sid = await new_session(auth, token)
    gen = (await auth.post("/chat", json={"session_id": sid, "message": "hi", "background": True})).json()[
        "generation_id"
    ]
    other = await register(client, "mallory")
    r = await client.post(f"/generations/{gen}/cancel", headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 404
    assert (await client.get(f"/generations/{gen}", headers={"Authorization": f"Bearer {other}"})).status_code == 404


GUARDS = [
    # (settings, fake behaviour, session config, status, finish_reason, expected content or None)
    ({"first_token_timeout": 0.3}, {"ttft": 5}, {}, "incomplete", "timeout", ""),
    ({"idle_timeout": 0.3}, {"stall_after": 3}, {}, "incomplete", "timeout", "t0 t1 t2 "),
    ({"max_generation_seconds": 0.6}, {"n": 10_000, "tps": 50}, {}, "incomplete", "timeout", None),
    ({}, {"n": 50}, {"max_tokens": 5}, "incomplete", "length", "t0 t1 t2 t3 t4 "),
    ({}, {"loop": 1, "tps": 500}, {}, "incomplete", "loop", None),
]


@pytest.mark.parametrize(
    "overrides, behaviour, config, status, reason, content",
    GUARDS,
    ids=["first-token", "idle", "total", "max-tokens", "loop"],
)
async def test_guards_end_the_generation_incomplete(
    tmp_path, fake, overrides, behaviour, config, status, reason, content
):
    settings = make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="k",
        default_model="openai/fake-model",
        **overrides,
    )
    server = await Server(settings).start()
    try:
        async with server.client() as c:
            token = await register(c, "gus")
        async with server.client(token) as c:
            await behave(fake, **behaviour)
            sid = await new_session(c, token, **config)
            async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
                await ws.send("go")
                gen = (await ws.recv())["generation_id"]
                frames = await ws.until_done(gen, timeout=15)
            done = frames[-1]
            assert (done["status"], done["finish_reason"]) == (status, reason)
            stored = (await c.get(f"/generations/{gen}")).json()
            assert stored["content"] == text_of(frames)
            if content is not None:
                assert stored["content"] == content
            if reason == "loop":
                assert "I am stuck in a loop." in stored["content"] and len(stored["content"]) < 2000
            if behaviour.get("n") != 50:  # every guard but max_tokens had to hang up on the model
                await wait_disconnected(fake)
    finally:
        await server.stop()


async def test_provider_error_mid_stream_fails_with_the_providers_message(upstream, up, fake):
    await behave(fake, error_after=3)
    sid = await new_session(up, upstream.token)
    async with WS.connect(f"{upstream.ws_base}/ws/{sid}", upstream.token) as ws:
        await ws.send("go")
        gen = (await ws.recv())["generation_id"]
        frames = await ws.until_done(gen)
    done = frames[-1]
    assert done["status"] == "failed" and done["finish_reason"] == "error"
    assert "fake upstream error after 3 tokens" in done["error"]["message"] and done["error"]["code"]
    stored = (await up.get(f"/generations/{gen}")).json()
    assert stored["error"] == done["error"] and stored["content"] == "t0 t1 t2 "


async def test_a_message_into_an_idle_session_is_claimed_as_it_is_stored(upstream, up, fake):
    """The fast start: stored and claimed in one transaction, so it is already running when
    submit returns, and already stoppable before its drainer task has started."""
    from auth.security import decode_token

    await behave(fake, n=10_000, tps=20)
    sid = await new_session(up, upstream.token)
    services = upstream.services
    chat = await services.sessions.find(services.db, decode_token(services.tokens, upstream.token), sid)
    first = await services.generations.submit(chat, "one")
    assert first.position == 0 and first.generation_id in services.dispatch.controls
    assert (await services.store.get(first.generation_id)).status == "running"
    second = await services.generations.submit(chat, "two")  # the session is busy: queued, as before
    assert second.position == 1 and (await services.store.get(second.generation_id)).status == "queued"
    r = await up.post(f"/generations/{first.generation_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.json()
    r = await up.post(f"/generations/{second.generation_id}/cancel")
    assert r.status_code == 200 and r.json()["status"] == "cancelled", r.json()
    assert (await upstream_stats(fake))["requests"] <= 2
