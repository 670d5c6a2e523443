"""Bad WebSocket frames get an `error` frame and the socket stays open; frames are bounded
in UTF-8 bytes, tighter before authentication, and by the server itself, which refuses an
oversized frame from its header instead of buffering it."""

import asyncio
import json
import struct

import pytest
import websockets

from tests.support import WS, Server, ServerProcess, make_settings, new_session, register

SURROGATE = "\ud800"


async def _closed_with(conn, timeout: float = 10) -> int:
    with pytest.raises(websockets.ConnectionClosed) as info:
        async with asyncio.timeout(timeout):
            while True:
                await conn.recv()
    return info.value.rcvd.code


async def _still_open(ws: WS) -> None:
    await ws.send({"type": "ping"})
    while (await ws.recv())["type"] != "pong":
        pass


async def test_deeply_nested_frame_is_an_error_frame(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send('{"type":"message","content":' + "[" * 10_000 + "]" * 10_000 + "}")
        frame = await ws.recv()
        assert frame["type"] == "error" and frame["code"] == "invalid_json", frame
        await _still_open(ws)


@pytest.mark.parametrize("field", ["content", "client_msg_id"])
async def test_lone_surrogate_is_an_error_frame(server, auth, token, field):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        frame = {"type": "message", "content": "hello", "client_msg_id": "m1", field: f"x{SURROGATE}"}
        await ws.send(json.dumps(frame))  # ensure_ascii: the surrogate travels as \ud800
        error = await ws.recv()
        assert error["type"] == "error" and error["code"] == "invalid_field", error
        await _still_open(ws)
    history = (await auth.get(f"/sessions/{sid}")).json()["history"]
    assert history == []


async def test_frame_limit_counts_utf8_bytes(tmp_path):
    # The server's own limit is lifted here so that the service's check is the one tested.
    settings = make_settings(tmp_path, ws_max_frame_bytes=2048, max_message_chars=1000)
    server = await Server(settings, ws_max_size=16 * 1024 * 1024).start()
    try:
        async with server.client() as c:
            token = await register(c, "euro")
        async with WS.connect(f"{server.ws_base}/ws", token) as ws:
            await ws.recv()  # session
            await ws.send("\u20ac" * 682)  # 682 characters, 2046 bytes: under the limit, a message
            reply = await ws.recv()
            assert reply["type"] == "accepted", reply
            await ws.send("\u20ac" * 683)  # 683 characters (under 2048), 2049 bytes: over it
            assert await _closed_with(ws.conn) == 1009
    finally:
        await server.stop()


async def test_unauthenticated_frame_is_bounded_to_an_auth_frame(server):
    async with WS.connect(f"{server.ws_base}/ws", None) as ws:
        await ws.send({"type": "auth", "token": "x" * 8000})
        assert await _closed_with(ws.conn) == 1009


def _frame_header(length: int) -> bytes:
    """A masked text frame's header announcing `length` bytes of payload."""
    return struct.pack("!BBQ", 0x81, 0x80 | 127, length) + b"\x00\x00\x00\x00"


async def _refused_from_header(ws_base: str) -> int:
    async with websockets.connect(f"{ws_base}/ws", max_size=None) as conn:
        conn.transport.write(_frame_header(8 * 1024 * 1024) + b"x" * 1024)
        return await _closed_with(conn)


async def test_server_refuses_an_oversized_frame_before_buffering_it(server):
    # Only the header and 1 KiB of an 8 MiB frame are sent: a server that buffered up to its
    # own default maximum would wait for the rest and never answer.
    assert await _refused_from_header(server.ws_base) == 1009


async def test_command_line_server_refuses_an_oversized_frame(tmp_path):
    proc = await ServerProcess({"DATA_DIR": tmp_path / "data", "WS_MAX_FRAME_BYTES": 65536}).start()
    try:
        codes = await asyncio.gather(*(_refused_from_header(proc.ws_base) for _ in range(12)))
        assert codes == [1009] * 12
    finally:
        await proc.stop()


async def test_resume_after_seq_is_bounded(server, auth, token):
    sid = await new_session(auth, token)
    async with WS.connect(f"{server.ws_base}/ws/{sid}", token) as ws:
        await ws.send({"type": "message", "content": "hi"})
        generation_id = (await ws.recv())["generation_id"]
        await ws.until_done(generation_id)
        await ws.send({"type": "resume", "generation_id": generation_id, "after_seq": 2**64})
        error = await ws.recv()
        assert error["type"] == "error" and error["code"] == "invalid_field", error
        await _still_open(ws)
