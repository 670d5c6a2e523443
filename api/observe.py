"""Per-request telemetry as plain ASGI middleware: request id, HTTP metrics by route
template, the request's log event and (when tracing is on) its span.

Plain ASGI, not BaseHTTPMiddleware (which would run a task group and wrap the body of every
response). The `send` wrapper sees the response start (status, request id header) and
passes body messages straight on; WebSockets are counted without wrapping anything."""

import logging
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.observability import REQUEST, TRANSPORT, metrics, tracing

log = logging.getLogger("chat.request")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def route_of(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def request_id_of(scope: Scope) -> str:
    """The client's X-Request-ID when it is a sane token, else a new one."""
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            text: str = value.decode("latin-1")
            if _REQUEST_ID.match(text):
                return text
            break
    return secrets.token_hex(16)


class Observe:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            return await self._websocket(scope, receive, send)
        if kind != "http":
            return await self.app(scope, receive, send)
        request_id = request_id_of(scope)
        fields = {"request_id": request_id}
        REQUEST.set(fields)
        TRANSPORT.set("http")
        started = time.perf_counter()
        span = token = None
        if tracing.enabled():
            span, token = tracing.start_http(scope["method"], scope["headers"])
        status, sse = 500, False
        header = (b"x-request-id", request_id.encode())

        async def observed_send(message: Message) -> None:
            nonlocal status, sse
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                for name, value in headers:
                    if name == b"content-type" and value.startswith(b"text/event-stream"):
                        sse = True
                        metrics.STREAMS_OPEN.labels("sse").inc()
                    elif name in (b"x-session-id", b"x-generation-id"):
                        fields[name[2:].decode().replace("-", "_")] = value.decode("latin-1")
                message["headers"] = [*headers, header]
                metrics.HTTP_DURATION.labels(scope["method"], route_of(scope)).observe(time.perf_counter() - started)
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            route = route_of(scope)
            if sse:
                metrics.STREAMS_OPEN.labels("sse").dec()
            metrics.HTTP_REQUESTS.labels(scope["method"], route, str(status)).inc()
            if span is not None and token is not None:
                tracing.end_http(span, token, route, status)
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            log.info(
                "%s %s %s %.1f ms request_id=%s",
                scope["method"],
                route,
                status,
                duration_ms,
                request_id,
                extra={
                    "event": "request",
                    **fields,
                    "method": scope["method"],
                    "route": route,
                    "path": scope.get("path", ""),
                    "status": status,
                    "duration_ms": duration_ms,
                },
            )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Counted, and one log event when the socket ends (its messages are not wrapped)."""
        fields = {"request_id": request_id_of(scope)}
        REQUEST.set(fields)
        TRANSPORT.set("websocket")
        metrics.WS_CONNECTIONS.inc()
        gauge = metrics.STREAMS_OPEN.labels("websocket")
        gauge.inc()
        started = time.perf_counter()
        try:
            await self.app(scope, receive, send)
        finally:
            gauge.dec()
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            log.info(
                "WS %s closed after %.1f ms request_id=%s",
                route_of(scope),
                duration_ms,
                fields["request_id"],
                extra={
                    "event": "websocket",
                    **fields,
                    "route": route_of(scope),
                    "path": scope.get("path", ""),
                    "duration_ms": duration_ms,
                },
            )
