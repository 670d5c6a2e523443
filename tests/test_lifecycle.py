"""Process lifecycle: graceful SIGTERM and crash recovery, with the real server process."""

import asyncio
import signal

import pytest
import websockets

from tests.support import WS, ServerProcess, new_session, read_sse, register, text_of
from tests.test_resume import behave


@pytest.fixture
def env(tmp_path, fake):
    return {"DATA_DIR": tmp_path / "data", "OPENAI_BASE_URL": fake.openai_base_url, "OPENAI_API_KEY": "k",
            "DEFAULT_MODEL": "openai/fake-model", "FLUSH_INTERVAL": "0.2"}


async def test_sigterm_interrupts_stores_and_closes_1001(env, fake):
    server = await ServerProcess(env).start()
    try:
        async with server.client() as c:
            token = await register(c, "sam")
            sid = await new_session(c, token)
        await behave(fake, n=100_000, tps=40)
        frames = []
        async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
            await ws.send("a long one")
            gen = (await ws.recv())["generation_id"]
            frames += [await ws.recv() for _ in range(5)]
            server.signal(signal.SIGTERM)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    frames.append(await ws.recv(timeout=15))
        assert closed.value.rcvd.code == 1001
        done = frames[-1]
        assert done["type"] == "done" and (done["status"], done["finish_reason"]) == ("failed", "interrupted")
        # uvicorn re-raises the captured signal once shut down, so the exit status is -SIGTERM.
        assert await server.wait_exit() in (0, -signal.SIGTERM)
    finally:
        await server.stop()
    server = await ServerProcess(env).start()  # the answer so far was stored
    try:
        async with server.client(token) as c:
            stored = (await c.get(f"/generations/{gen}")).json()
        assert stored["status"] == "failed" and stored["finish_reason"] == "interrupted"
        assert stored["content"] == text_of(frames) and stored["last_seq"] == done["seq"]
    finally:
        await server.stop()


async def test_crash_recovery_ends_running_generations_with_their_stored_text(env, fake):
    server = await ServerProcess(env).start()
    try:
        async with server.client() as c:
            token = await register(c, "kim")
            sid = await new_session(c, token)
        await behave(fake, n=100_000, tps=40)
        async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
            await ws.send("crash during this")
            gen = (await ws.recv())["generation_id"]
            frames = [await ws.recv() for _ in range(20)]
            await asyncio.sleep(0.5)  # a couple of flush intervals
            server.proc.kill()  # SIGKILL: no chance to clean up
            await server.wait_exit()
    finally:
        await server.stop()
    server = await ServerProcess(env).start()
    try:
        async with server.client(token) as c:
            stored = (await c.get(f"/generations/{gen}")).json()
            assert (stored["status"], stored["finish_reason"]) == ("failed", "interrupted")
            assert stored["content"] and stored["content"] == "".join(f"t{i} " for i in range(stored["last_seq"] - 1))
            assert stored["last_seq"] - 1 >= 20  # at most one flush interval was lost
            async with c.stream("GET", f"/generations/{gen}/events", params={"after": 3}) as r:
                events = await read_sse(r)
        assert [e["type"] for e in events] == ["snapshot", "done"]
        assert events[0]["content"] == stored["content"] and events[1]["seq"] == stored["last_seq"]
        assert text_of(frames).startswith("t0 t1 ")
    finally:
        await server.stop()
