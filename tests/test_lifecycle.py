"""Process lifecycle: graceful SIGTERM and crash recovery, with the real server process."""

import signal

import pytest
import websockets

from tests.crash_support import check_resumed, resume_everywhere
from tests.support import WS, ServerProcess, new_session, read_sse, register, text_of
from tests.test_resume import behave


@pytest.fixture
def env(tmp_path, fake):
    return {
        "DATA_DIR": tmp_path / "data",
        "OPENAI_BASE_URL": fake.openai_base_url,
        "OPENAI_API_KEY": "k",
        "DEFAULT_MODEL": "openai/fake-model",
        "FLUSH_INTERVAL": "0.2",
    }


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


async def test_kill_9_then_resume_from_any_seq_gets_snapshot_and_done(env, fake):
    """kill -9 mid-stream, restart, then resume from the last seq seen (ahead of the stored
    text), from seqs in between and from 0, on every transport: never silence, and the done
    frame's seq is above every seq that was sent."""
    env = {**env, "FLUSH_INTERVAL": "1.0", "SEQ_RESERVE": "16"}  # the client runs ahead of the DB
    server = await ServerProcess(env).start()
    try:
        async with server.client() as c:
            token = await register(c, "kim")
            sid = await new_session(c, token)
        await behave(fake, n=100_000, tps=60)
        async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
            await ws.send("crash during this")
            gen = (await ws.recv())["generation_id"]
            frames = [await ws.recv() for _ in range(70)]  # past a flush and several reservations
            server.proc.kill()  # SIGKILL: no chance to clean up
            await server.wait_exit()
            with pytest.raises(websockets.ConnectionClosed):
                while True:  # what was in flight still counts as seen
                    frames.append(await ws.recv(timeout=5))
    finally:
        await server.stop()
    max_seen = frames[-1]["seq"]
    assert [f["seq"] for f in frames] == list(range(1, max_seen + 1))
    server = await ServerProcess(env).start()
    try:
        async with server.client(token) as c:
            stored = (await c.get(f"/generations/{gen}")).json()
        assert (stored["status"], stored["finish_reason"]) == ("failed", "interrupted")
        assert stored["content"] and text_of(frames).startswith(stored["content"])
        assert len(stored["content"]) < len(text_of(frames))  # the crash lost unflushed text
        slowest = 0.0
        for after in sorted({0, 3, max_seen // 2, max_seen - 1, max_seen}):
            got, took = await resume_everywhere(server.base, server.ws_base, token, sid, gen, after)
            check_resumed(got, text_of(frames[:after]), after, max_seen, stored)
            slowest = max(slowest, took)
        print(f"slowest resume to done after kill -9 and restart: {slowest:.3f}s")
    finally:
        await server.stop()


async def test_sigterm_delivers_the_done_frame_to_every_open_stream(env, fake):
    """Under the real launcher (`python -m serve`, its DrainingServer): two WebSockets and an
    SSE stream on two running answers each get the answer's done frame before the server
    goes, the sockets then a 1001; the SSE body ends after its done event."""
    server = await ServerProcess(env).start()
    try:
        async with server.client() as c:
            token = await register(c, "ada")
            sids = [await new_session(c, token) for _ in range(2)]
        await behave(fake, n=100_000, tps=40)
        async with (
            WS.connect(f"{server.ws_base}/ws/{sids[0]}", token) as ws1,
            WS.connect(f"{server.ws_base}/ws/{sids[1]}", token) as ws2,
        ):
            await ws1.send("first")
            await ws2.send("second")
            gens = [(await ws1.recv())["generation_id"], (await ws2.recv())["generation_id"]]
            async with server.client(token) as c, c.stream("GET", f"/generations/{gens[0]}/events") as sse:
                assert sse.status_code == 200
                started = [await ws1.recv(), await ws2.recv()]  # both answers are streaming
                server.signal(signal.SIGTERM)
                sse_events = await read_sse(sse)
            closes = []
            for ws, first in zip((ws1, ws2), started, strict=True):
                frames = [first]
                with pytest.raises(websockets.ConnectionClosed) as closed:
                    while True:
                        frames.append(await ws.recv(timeout=15))
                closes.append(closed.value.rcvd.code)
                assert (frames[-1]["type"], frames[-1]["finish_reason"]) == ("done", "interrupted")
        assert closes == [1001, 1001]
        assert sse_events[-1]["type"] == "done" and sse_events[-1]["finish_reason"] == "interrupted"
        assert await server.wait_exit() in (0, -signal.SIGTERM)
    finally:
        await server.stop()
