"""Resuming a generation after a crash on every transport, as a client would: each resume
must end with the done frame within RESUME_DEADLINE (PROTOCOL.md: never silence), and the
frames it gives must rebuild the stored text from what the client held."""

import asyncio
import time

import httpx

from tests.support import WS, read_sse, text_of

RESUME_DEADLINE = 2.0  # seconds; the protocol's bound for a resume after a crash


async def _ws(ws_base: str, token: str, sid: str, gen: str, after: int) -> list[dict]:
    async with WS.connect(f"{ws_base}/ws/{sid}", token) as ws:
        await ws.send({"type": "resume", "generation_id": gen, "after_seq": after})
        return await ws.until_done(gen, timeout=RESUME_DEADLINE)


async def _sse(base: str, token: str, path: str, after: int, as_header: bool) -> list[dict]:
    headers = {"Authorization": f"Bearer {token}"}
    params = {}
    if as_header:
        headers["Last-Event-ID"] = str(after)
    else:
        params["after"] = after
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=RESUME_DEADLINE) as c:
        async with c.stream("GET", path, params=params) as r:
            assert r.status_code == 200, await r.aread()
            return await read_sse(r)


async def resume_everywhere(
    base: str, ws_base: str, token: str, sid: str, gen: str, after: int, by_session: bool = True
) -> tuple[dict[str, list[dict]], float]:
    """The frames each transport gives for a resume after `after`, and the slowest one's
    time to its done frame (seconds). `by_session`: also GET /stream/{session_id}, which
    follows the session's latest generation (so only while `gen` is that one)."""
    transports = {
        "ws": lambda: _ws(ws_base, token, sid, gen, after),
        "sse Last-Event-ID": lambda: _sse(base, token, f"/generations/{gen}/events", after, True),
        "sse ?after": lambda: _sse(base, token, f"/generations/{gen}/events", after, False),
        "stream generation": lambda: _sse(base, token, f"/stream/{gen}", after, True),
    }
    if by_session:
        transports["stream session"] = lambda: _sse(base, token, f"/stream/{sid}", after, False)
    out, slowest = {}, 0.0
    for name, resume in transports.items():
        started = time.monotonic()
        try:
            async with asyncio.timeout(RESUME_DEADLINE):
                frames = await resume()
        except TimeoutError:
            raise AssertionError(f"{name}: no done frame within {RESUME_DEADLINE}s of resuming after {after}") from None
        slowest = max(slowest, time.monotonic() - started)
        assert frames and frames[-1]["type"] == "done", f"{name} after {after}: {frames}"
        out[name] = frames
    return out, slowest


def check_resumed(
    frames_by_transport: dict[str, list[dict]], held: str, after: int, max_seen: int, stored: dict
) -> None:
    """Every transport's frames, applied to the text the client held up to `after`, give the
    stored text, and the done frame's seq is above every seq the client ever saw."""
    for name, frames in frames_by_transport.items():
        done = frames[-1]
        assert done["seq"] > max_seen, f"{name}: done seq {done['seq']} reuses a seq (saw {max_seen})"
        assert done["seq"] == stored["last_seq"]
        assert (done["status"], done["finish_reason"]) == ("failed", "interrupted")
        assert text_of(frames, base=held, after=after) == stored["content"], name
