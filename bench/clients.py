"""Lean load-generator clients on raw asyncio protocols (no websockets/httpx per frame):
a WebSocket client for /ws/{session_id}, an HTTP/1.1 client for the service's SSE
(POST /chat stream) and for the upstream's OpenAI SSE (POST /v1/chat/completions).

Each read is stamped once (time.perf_counter, CLOCK_MONOTONIC: comparable across
processes) and every frame in it gets that stamp, so the cost of a frame is one slice,
one json.loads and two list appends."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import zlib
from time import perf_counter

_loads = json.loads


class Stream:
    """One generation as a client sees it: send time, arrival times of its content frames
    and how many tokens each carried (more than one only when the service coalesces)."""

    __slots__ = ("t_send", "times", "counts", "done", "status", "error", "fut", "generation_id")

    def __init__(self) -> None:
        self.t_send = 0.0
        self.times: list[float] = []
        self.counts: list[int] = []
        self.done = 0.0
        self.status = ""
        self.error = ""
        self.fut: asyncio.Future | None = None
        self.generation_id = ""

    def arm(self) -> asyncio.Future:
        self.fut = asyncio.get_running_loop().create_future()
        return self.fut

    def finish(self, now: float, status: str, error: str = "") -> None:
        self.done, self.status, self.error = now, status, error
        if self.fut is not None and not self.fut.done():
            self.fut.set_result(None)

    def tokens(self) -> int:
        return sum(self.counts)


def _tokens_in(text: str) -> int:
    # The fake upstream's tokens are "t<i> ": one space per token, whatever the framing.
    return text.count(" ") or 1


# ---------------------------------------------------------------- WebSocket


class WSClient(asyncio.Protocol):
    """A client of /ws/{session_id}: handshake with an Authorization header, then text
    frames. One generation in flight at a time is enough for every load shape."""

    def __init__(self, host: str, port: int, path: str, token: str, deflate: bool = False):
        self.host, self.port, self.path, self.token = host, port, path, token
        self.offer_deflate = deflate
        self.inflate = None
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.handshake: asyncio.Future | None = None
        self.closed: asyncio.Future | None = None
        self.current: Stream | None = None
        self.pending: list[Stream] = []
        self.frames_seen = 0
        self.frag: list[bytes] = []
        self.compressed = False
        self.close_code = 0

    async def connect(self) -> WSClient:
        loop = asyncio.get_running_loop()
        self.handshake = loop.create_future()
        self.closed = loop.create_future()
        await loop.create_connection(lambda: self, self.host, self.port)
        key = base64.b64encode(os.urandom(16)).decode()
        ext = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n" if self.offer_deflate else ""
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{ext}"
                f"Authorization: Bearer {self.token}\r\n\r\n"
            ).encode()
        )
        await asyncio.wait_for(self.handshake, 30)
        return self

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if self.handshake and not self.handshake.done():
            self.handshake.set_exception(ConnectionError("closed during handshake"))
        if self.closed and not self.closed.done():
            self.closed.set_result(None)
        for s in ([self.current] if self.current else []) + self.pending:
            if not s.done:
                s.finish(perf_counter(), "disconnected", "connection lost")

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        buf = self.buf
        buf += data
        if not self.handshake.done():
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end]).decode("latin-1")
            del buf[: end + 4]
            if not head.startswith("HTTP/1.1 101"):
                self.handshake.set_exception(ConnectionError(head.split("\r\n", 1)[0]))
                return
            if "permessage-deflate" in head.lower():
                self.inflate = zlib.decompressobj(-15)
            self.handshake.set_result(None)
        while True:
            n = len(buf)
            if n < 2:
                return
            b0, b1 = buf[0], buf[1]
            length = b1 & 0x7F
            if length < 126:
                head = 2
            elif length == 126:
                if n < 4:
                    return
                length, head = (buf[2] << 8) | buf[3], 4
            else:
                if n < 10:
                    return
                length, head = struct.unpack_from(">Q", buf, 2)[0], 10
            if n < head + length:
                return
            payload = bytes(buf[head : head + length])
            del buf[: head + length]
            opcode = b0 & 0x0F
            if opcode in (1, 0):
                if opcode == 1:
                    self.compressed = bool(b0 & 0x40)
                if not b0 & 0x80:  # fragmented message (the service does not, handled anyway)
                    self.frag.append(payload)
                    continue
                if self.frag:
                    payload, self.frag = b"".join(self.frag) + payload, []
                if self.compressed and self.inflate is not None:
                    payload = self.inflate.decompress(payload + b"\x00\x00\xff\xff")
                self.on_text(now, payload)
            elif opcode == 9:  # ping: pong with the same payload
                self._send(0xA, payload)
            elif opcode == 8:
                code = struct.unpack_from(">H", payload)[0] if len(payload) >= 2 else 1005
                self.close_code = code
                self.transport.close()
                return

    def on_text(self, now: float, payload: bytes) -> None:
        self.frames_seen += 1
        frame = _loads(payload)
        kind = frame["type"]
        s = self.current
        if kind == "chunk":
            if s is not None:
                s.times.append(now)
                s.counts.append(_tokens_in(frame["chunk"]))
        elif kind == "accepted":
            if self.pending:
                s = self.current = self.pending.pop(0)
                s.generation_id = frame["generation_id"]
        elif kind == "done":
            if s is not None:
                self.current = None
                s.finish(now, frame["status"], (frame.get("error") or {}).get("message", ""))
        elif kind == "error":
            s = s or (self.pending.pop(0) if self.pending else None)
            if s is not None:
                self.current = None
                s.finish(now, "error", frame.get("message", ""))

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        m = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(m, "big")).to_bytes(n, "big") if n else b""
        self.transport.write(head + mask + masked)

    def send_message(self, stream: Stream, content: str = "hi") -> None:
        self.pending.append(stream)
        data = json.dumps({"type": "message", "content": content}).encode()
        stream.t_send = perf_counter()
        self._send(1, data)

    def pause(self) -> None:
        """Stops reading: the kernel buffers fill and the server's sends back up."""
        self.transport.pause_reading()

    def resume(self) -> None:
        self.transport.resume_reading()

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            try:
                self._send(8, struct.pack(">H", 1000))
            except Exception:
                pass
            self.transport.close()


# ---------------------------------------------------------------- HTTP + SSE


class SSEClient(asyncio.Protocol):
    """A keep-alive HTTP/1.1 connection that POSTs a JSON body and reads a chunked SSE
    response. `kind` "service" reads the service's frames (event: chunk / done),
    "openai" chat.completion.chunk events (the upstream's, or the service's /v1 route),
    "responses" the service's /v1/responses events."""

    def __init__(self, host: str, port: int, kind: str, headers: dict[str, str] | None = None):
        self.host, self.port, self.kind = host, port, kind
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.transport = None
        self.raw = bytearray()
        self.body = bytearray()
        self.in_headers = True
        self.chunk_left = -1  # -1: expecting a size line
        self.stream: Stream | None = None
        self.lost: asyncio.Future | None = None
        self.idle: asyncio.Event | None = None  # set between responses: the connection can be reused
        self.on_headers = None  # called once the response headers are in

    async def connect(self) -> SSEClient:
        loop = asyncio.get_running_loop()
        self.lost = loop.create_future()
        self.idle = asyncio.Event()
        self.idle.set()
        await loop.create_connection(lambda: self, self.host, self.port)
        return self

    async def wait_idle(self) -> None:
        """The previous response is read to its end (its done frame can come first)."""
        if not self.idle.is_set():
            await asyncio.wait_for(self.idle.wait(), 30)

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self.idle.set()
        if self.on_headers is not None:
            self.on_headers()
        if self.stream is not None and not self.stream.done:
            self.stream.finish(perf_counter(), "disconnected", "connection lost")

    def post(self, path: str, body: dict, stream: Stream) -> None:
        data = json.dumps(body).encode()
        self.stream, self.in_headers, self.chunk_left = stream, True, -1
        self.idle.clear()
        self.raw.clear()
        self.body.clear()
        req = (
            f"POST {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Type: application/json\r\n"
            f"Accept: text/event-stream\r\n{self.headers}Content-Length: {len(data)}\r\n\r\n"
        ).encode() + data
        if not stream.t_send:  # a caller may have stamped the intended send time already
            stream.t_send = perf_counter()
        self.transport.write(req)

    def data_received(self, data: bytes) -> None:
        now = perf_counter()
        raw = self.raw
        raw += data
        if self.in_headers:
            end = raw.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(raw[:end]).decode("latin-1")
            del raw[: end + 4]
            self.in_headers = False
            if self.on_headers is not None:
                self.on_headers()
            status = head.split(" ", 2)[1] if " " in head else "?"
            gid = head.lower().find("\r\nx-generation-id: ")
            if gid >= 0 and self.stream is not None:  # the /v1 routes: no accepted frame
                self.stream.generation_id = head[gid + 20 : gid + 46]
            if status != "200" or "chunked" not in head.lower():
                self._end(now, "error", f"HTTP {status}")
                self.transport.close()
                return
        body = self.body
        while raw:
            if self.chunk_left < 0:
                eol = raw.find(b"\r\n")
                if eol < 0:
                    break
                size = int(bytes(raw[:eol]).split(b";")[0], 16)
                del raw[: eol + 2]
                if size == 0:
                    self._events(now)
                    s = self.stream
                    if s is not None and not s.done:
                        s.finish(now, "eof", "stream ended without a done frame")
                    del raw[:2]
                    self.idle.set()
                    return
                self.chunk_left = size + 2  # data and its CRLF
            take = min(self.chunk_left, len(raw))
            body += raw[:take]
            del raw[:take]
            self.chunk_left -= take
            if self.chunk_left == 0:
                del body[-2:]
                self.chunk_left = -1
        self._events(now)

    def _events(self, now: float) -> None:
        body = self.body
        start = 0
        while True:
            end = body.find(b"\n\n", start)
            if end < 0:
                break
            self.on_event(now, bytes(body[start:end]))
            start = end + 2
        if start:
            del body[:start]

    def on_event(self, now: float, event: bytes) -> None:
        s = self.stream
        if s is None or s.done:
            return
        if self.kind == "service":
            # id: N \n event: chunk \n data: {...}
            i = event.find(b"event: ")
            if i < 0:
                return  # a ping comment
            j = event.find(b"\n", i)
            kind = event[i + 7 : j]
            data = event[event.find(b"data: ", j) + 6 :]
            if kind == b"chunk":
                s.times.append(now)
                s.counts.append(_tokens_in(_loads(data)["chunk"]))
            elif kind == b"done":
                frame = _loads(data)
                s.finish(now, frame["status"], (frame.get("error") or {}).get("message", ""))
            elif kind == b"accepted":
                s.generation_id = _loads(data)["generation_id"]
            elif kind == b"error":
                s.finish(now, "error", _loads(data).get("message", ""))
        elif self.kind == "responses":  # event: response.<type> \n data: {...}
            if event.startswith(b"event: response.output_text.delta\n"):
                s.times.append(now)
                s.counts.append(_tokens_in(_loads(event[event.find(b"data: ") + 6 :])["delta"]))
            elif event.startswith(
                (b"event: response.completed", b"event: response.incomplete", b"event: response.failed")
            ):
                response = _loads(event[event.find(b"data: ") + 6 :])["response"]
                s.finish(now, response["status"], str(response.get("error") or ""))
        else:
            data = event[6:] if event.startswith(b"data: ") else event
            if data == b"[DONE]":
                s.finish(now, "completed")
                return
            obj = _loads(data)
            if "error" in obj:
                s.finish(now, "error", str(obj["error"]))
                return
            for choice in obj.get("choices") or ():
                text = (choice.get("delta") or {}).get("content")
                if text:
                    s.times.append(now)
                    s.counts.append(_tokens_in(text))

    def _end(self, now: float, status: str, error: str) -> None:
        if self.stream is not None and not self.stream.done:
            self.stream.finish(now, status, error)

    def close(self) -> None:
        if self.transport and not self.transport.is_closing():
            self.transport.close()
