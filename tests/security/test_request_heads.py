"""Request heads are bounded in size, count and time, with a clear answer, on plain HTTP
and on WebSocket upgrades: raw sockets against a real server (api/serving.py)."""

import asyncio
import json

import pytest

from tests.support import Server, ServerProcess, make_settings

UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
)
PLAIN = b"GET /health HTTP/1.1\r\nHost: x\r\n"


async def _exchange(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Sends `data` and reads until the server closes; TimeoutError if it never answers."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        async with asyncio.timeout(timeout):
            return await reader.read()
    finally:
        writer.close()


def _status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


def _error_code(response: bytes) -> str:
    return json.loads(response.split(b"\r\n\r\n", 1)[1])["code"]


@pytest.mark.parametrize("start", [PLAIN, UPGRADE], ids=["http", "upgrade"])
async def test_a_9kb_header_line_is_431(server, start):
    response = await _exchange(server.port, start + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n")
    assert _status(response) == 431
    assert _error_code(response) == "headers_too_large"


@pytest.mark.parametrize("start", [PLAIN, UPGRADE], ids=["http", "upgrade"])
async def test_too_many_headers_is_431(server, start):
    headers = b"".join(b"X-H%d: v\r\n" % i for i in range(150))
    response = await _exchange(server.port, start + headers + b"\r\n")
    assert _status(response) == 431


async def test_a_huge_header_is_refused_without_reading_it_all(server):
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        writer.write(PLAIN + b"X-Big: ")
        sent = 0
        with pytest.raises((ConnectionError, OSError)):
            while sent < 48 * 1024 * 1024:  # 48 MiB, in 64 KiB writes, until the server hangs up
                writer.write(b"a" * 65536)
                await writer.drain()
                sent += 65536
        try:
            response = await reader.read()
        except ConnectionResetError:  # answered, then reset for the bytes left unread
            response = b""
    finally:
        writer.close()
    assert sent < 4 * 1024 * 1024
    assert response == b"" or _status(response) == 431


async def test_a_head_over_the_total_size_is_431(server):
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 4000) for i in range(5))  # 20 kB, lines of 4 kB
    response = await _exchange(server.port, PLAIN + headers + b"\r\n")
    assert _status(response) == 431


async def test_a_head_within_the_limits_is_served(server):
    headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(10))
    response = await _exchange(server.port, PLAIN + headers + b"Connection: close\r\n\r\n")
    assert _status(response) == 200


@pytest.mark.parametrize("start", [PLAIN, UPGRADE], ids=["http", "upgrade"])
async def test_a_slow_head_times_out_with_408(tmp_path, start):
    server = await Server(make_settings(tmp_path, header_timeout=1.0)).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)

        async def trickle():  # a byte at a time, never finishing the head
            for byte in start:
                writer.write(bytes([byte]))
                await asyncio.sleep(0.05)

        sender = asyncio.create_task(trickle())
        async with asyncio.timeout(10):
            response = await reader.read()
        sender.cancel()
        writer.close()
        assert _status(response) == 408
        assert _error_code(response) == "request_timeout"
    finally:
        await server.stop()


async def test_a_silent_connection_times_out(tmp_path):
    server = await Server(make_settings(tmp_path, header_timeout=1.0)).start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(10):
            response = await reader.read()
        writer.close()
        assert _status(response) == 408
    finally:
        await server.stop()


async def test_command_line_server_bounds_heads(tmp_path):
    proc = await ServerProcess({"DATA_DIR": tmp_path / "data"}).start()
    try:
        response = await _exchange(proc.port, UPGRADE + b"X-Big: " + b"a" * 9000 + b"\r\n\r\n")
        assert _status(response) == 431
    finally:
        await proc.stop()
