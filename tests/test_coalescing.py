"""COALESCE_WINDOW_MS: several tokens per chunk frame under load, without holding back the
first token or any token longer than the window, and with the frames still adding up to
the stored content (PROTOCOL.md: one seq per chunk frame)."""

import asyncio
import json

import httpx
import pytest

from services.generations.runner import GenerationRunner
from services.generations.state import GenerationState, Stop
from services.providers.base import Finish
from services.streaming.memory_log import MemoryStreamLog
from tests.support import WS, Server, make_settings, new_session, register, text_of


def _texts(log: MemoryStreamLog, gen: str) -> list[str]:
    return [f.data for f in log._logs[gen].frames]


async def test_first_token_alone_at_once_and_nothing_held_past_the_window(tmp_path):
    log = MemoryStreamLog(100)
    runner = GenerationRunner(make_settings(tmp_path, coalesce_window_ms=20), None, log, None)
    gen = "01JBENCHC0A1ESCE000000000A"
    seen = []

    async def events():
        yield "a"
        seen.append(len(log._logs[gen].frames))  # the first token is already out, alone
        yield "b"
        yield "c"  # both inside the window: held, then sent together
        await asyncio.sleep(0.3)  # far longer than the window: the held tokens went out meanwhile
        seen.append(len(log._logs[gen].frames))
        yield "d"  # after a quiet spell: at once, alone
        seen.append(len(log._logs[gen].frames))
        yield "e"
        yield Finish("stop")  # whatever is held goes out before the stream ends

    await log.create(gen)
    state = GenerationState(gen, reserved=10**6)  # the seq reservation is not under test here
    assert await runner._stream(events(), state, 100) == "stop"
    frames = log._logs[gen].frames
    assert seen == [1, 2, 3]
    assert [f.seq for f in frames] == [1, 2, 3, 4]
    assert [json.loads(f.data)["chunk"] for f in frames] == ["a", "bc", "d", "e"]
    assert state.content() == "abcde" and state.seq == 4


async def test_window_zero_is_one_frame_per_token(tmp_path):
    log = MemoryStreamLog(100)
    runner = GenerationRunner(make_settings(tmp_path), None, log, None)
    gen = "01JBENCHC0A1ESCE000000000B"

    async def events():
        for t in "abc":
            yield t

    await log.create(gen)
    await runner._stream(events(), GenerationState(gen, reserved=10**6), 100)
    assert len(_texts(log, gen)) == 3


async def test_length_guard_counts_tokens_not_frames(tmp_path):
    log = MemoryStreamLog(100)
    runner = GenerationRunner(make_settings(tmp_path, coalesce_window_ms=20), None, log, None)
    gen = "01JBENCHC0A1ESCE000000000C"

    async def events():
        for t in "abcdefgh":
            yield t

    await log.create(gen)
    state = GenerationState(gen, reserved=10**6)  # the seq reservation is not under test here
    with pytest.raises(Stop) as stopped:
        await runner._stream(events(), state, 5)
    assert stopped.value.reason == "length"
    assert state.content() == "abcde"  # the held tokens were sent before stopping


@pytest.fixture
async def coalescing(tmp_path, fake):
    settings = make_settings(
        tmp_path,
        openai_base_url=fake.openai_base_url,
        openai_api_key="test-key",
        default_model="openai/fake-model",
        coalesce_window_ms=20,
    )
    srv = await Server(settings).start()
    async with srv.client() as c:
        srv.token = await register(c, "cora")
    yield srv
    await srv.stop()


async def test_coalesced_stream_matches_stored_content_on_ws_and_sse(coalescing, fake):
    # 300 unpaced tokens arrive in bursts: coalesced; a stall after the first token shows it
    # was sent alone without waiting for more.
    async with httpx.AsyncClient() as c:
        await c.post(f"{fake.base_url}/_fake/behaviour", json={"n": 300, "tps": 0, "stall_after": 1, "stall": 0.5})
    async with coalescing.client(coalescing.token) as up:
        sid = await new_session(up, coalescing.token)
        async with WS.connect(f"{coalescing.ws_base}/ws/{sid}", coalescing.token) as ws:
            await ws.send({"type": "message", "content": "go"})
            accepted = await ws.recv()
            gen = accepted["generation_id"]
            first = await ws.recv()
            assert first["type"] == "chunk" and first["seq"] == 1 and first["chunk"] == "t0 "
            frames = [first] + await ws.until_done(gen)
        chunks = [f for f in frames if f["type"] == "chunk"]
        expected = "".join(f"t{i} " for i in range(300))
        assert text_of(frames) == expected
        assert len(chunks) < 300  # several tokens per frame happened
        stored = (await up.get(f"/generations/{gen}")).json()
        assert stored["content"] == expected and stored["last_seq"] == len(chunks) + 1
        # SSE replays the same frames: the same seqs and the same text
        async with up.stream("GET", f"/generations/{gen}/events") as r:
            body = (await r.aread()).decode()
        sse_chunks = [line for line in body.split("\n") if line.startswith("data: ") and '"chunk"' in line]
        assert len(sse_chunks) == len(chunks)
