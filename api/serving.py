"""How uvicorn serves the app: its HTTP protocol with bounded request heads, and the options
every launcher uses (scripts/run.sh, docker-compose.yml, the tests' Server).

uvicorn's httptools protocol bounds neither the size nor the count of request headers, nor
the time a client takes to send them: one huge header is buffered whole and parsed on the
event loop, and a client trickling a head keeps its connection forever. This subclass
answers 431 for a head over MAX_HEADER_BYTES, a header line over MAX_HEADER_LINE_BYTES or more
than MAX_HEADERS headers, and 408 when the head is not complete within HEADER_TIMEOUT, on
plain requests and WebSocket upgrades alike (the upgrade is parsed here first).

It also clamps uvicorn's own WebSocket message limit to WS_MAX_FRAME_BYTES, whatever the
command line said, so that no frame larger than the service accepts is ever buffered: the
WebSocket protocol refuses it from its header with 1009.

`DrainingServer` is uvicorn's server with the graceful stop of api/lifecycle.py: on SIGTERM
or SIGINT it awaits the app's drain before uvicorn's own shutdown closes anything.

Launch: `python -m serve` (serve.py: this server, these options, `main:create_app`)."""

import asyncio
import json
import logging
import socket
from typing import Any

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from api.errors import error_body
from api.lifecycle import DRAIN
from config import Settings, get_settings

log = logging.getLogger("uvicorn.error")

_REFUSALS = {
    431: ("headers_too_large", "request headers are too large or too many"),
    408: ("request_timeout", "request headers were not received in time"),
}


class _HeadRefused(Exception):
    """Raised from a parser callback to stop parsing; httptools wraps it in a parser error."""


class LimitedHttpProtocol(HttpToolsProtocol):
    settings: Settings | None = None  # None: the process's settings, as main:create_app reads them

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        s = self.settings or get_settings()
        self.max_head, self.max_line, self.max_headers = s.max_header_bytes, s.max_header_line_bytes, s.max_headers
        self.head_timeout = s.header_timeout
        if config.ws_max_size > s.ws_max_frame_bytes:
            config.ws_max_size = s.ws_max_frame_bytes
        self.head_timer: asyncio.TimerHandle | None = None
        self.in_head = False  # between a request's first byte and the end of its headers
        self.began_in_chunk = False  # the current request began in the chunk being parsed
        self.head_bytes = self.header_count = 0
        self.refused: int | None = None

    # As uvicorn's own override: its protocols are only ever given a stream Transport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()  # also bounds a connection that never sends a byte

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused is not None:
            return
        self.began_in_chunk = False
        super().data_received(data)
        if self.in_head and self.refused is None:
            # Still inside a head after a whole chunk: all of it was head. The chunk a request
            # began in is counted by the callbacks instead (it may end a previous request).
            if not self.began_in_chunk:
                self.head_bytes += len(data)
            if self.head_bytes > self.max_head:
                self._refuse(431)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = self.began_in_chunk = True
        self.head_bytes = self.header_count = 0
        self._arm()

    def on_url(self, url: bytes) -> None:
        if self.began_in_chunk:
            self.head_bytes += len(url)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        line = len(name) + 2 + len(value)
        if self.began_in_chunk:
            self.head_bytes += line + 2
        if line > self.max_line or self.header_count > self.max_headers or self.head_bytes > self.max_head:
            self.refused = 431
            raise _HeadRefused
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._disarm()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self.refused is not None:  # the parser error was our callback's refusal
            return self._refuse(self.refused)
        super().send_400_response(msg)

    def _arm(self) -> None:
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _timed_out(self) -> None:
        self.head_timer = None
        if not self.transport.is_closing():
            self._refuse(408)

    def _refuse(self, status: int) -> None:
        self.refused = status
        self._disarm()
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
        log.warning("%s - request head refused with %d", client, status)
        if self.cycle is not None and not self.cycle.response_complete:
            self.transport.close()  # a response is on the wire: nothing else may be written
            return
        body = json.dumps(error_body(*_REFUSALS[status])).encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(
            b"content-type: application/json\r\nx-content-type-options: nosniff\r\n"
            b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body)
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()


class DrainingServer(uvicorn.Server):
    """Before uvicorn's shutdown (which closes WebSockets with 1012 and then waits for the
    streams), awaits the coroutine the app's lifespan left in its state under DRAIN: the
    generations end, their done frames reach the clients, the sockets close with 1001. A
    second SIGINT (uvicorn's force exit) skips it."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        state = getattr(getattr(self, "lifespan", None), "state", None) or {}
        drain = state.get(DRAIN)
        if drain is not None and not self.force_exit:
            try:
                await drain()
            except Exception:
                log.exception("graceful shutdown did not complete")
        await super().shutdown(sockets)


# The same, for uvicorn's command line (serve.py, tests, bench).
# --no-proxy-headers: uvicorn would believe X-Forwarded-For from loopback; the app reads it
# only from TRUSTED_PROXIES (services/client_address.py).
UVICORN_ARGS = [
    "--http",
    "api.serving:LimitedHttpProtocol",
    "--no-server-header",
    "--ws-per-message-deflate",
    "false",
    "--no-proxy-headers",
]


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """uvicorn.Config keyword arguments for this service, its limits taken from `settings`."""
    protocol = type("LimitedHttpProtocol", (LimitedHttpProtocol,), {"settings": settings})
    return {
        "http": protocol,
        "ws_max_size": settings.ws_max_frame_bytes,
        "server_header": False,
        # Per-message deflate costs CPU on every token frame for a few bytes saved.
        "ws_per_message_deflate": False,
        "proxy_headers": False,  # as UVICORN_ARGS
    }
