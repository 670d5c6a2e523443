"""Request body size limit and security headers as plain ASGI middleware: BaseHTTPMiddleware
would wrap every streamed chunk of every response in a task and queues, a real cost per token."""

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import OPENAI_PREFIX, openai_error_body


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    return await self._reject(send, scope)
                # The server delivers no more than a declared length: nothing to count, and
                # no wrapper on `send` for every chunk of a streamed response (SSE tokens).
                return await self.app(scope, receive, send)
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not response_started:
                await self._reject(send, scope)

    async def _reject(self, send: Send, scope: Scope) -> None:
        detail = f"request body over {self.max_bytes} bytes"
        if scope["path"].startswith(OPENAI_PREFIX):
            body = json.dumps(openai_error_body(413, "payload_too_large", detail)).encode()
        else:
            body = json.dumps({"code": "payload_too_large", "detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(BaseException):
    """Not an Exception: FastAPI turns any Exception raised while it reads the body into a
    400 "error parsing the body", and this must reach BodySizeLimit to become the 413."""


# The UI page renders model output as Markdown and keeps the access token in browser
# storage: no script but its own files, no remote origin, no framing.
UI_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
API_CSP = "default-src 'none'; frame-ancestors 'none'"  # JSON and streams are never rendered
# FastAPI's /docs and /redoc pages load their scripts from a CDN and start them inline.
DOCS_CSP = "frame-ancestors 'none'"
_ALWAYS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"), (b"referrer-policy", b"no-referrer")]


class SecurityHeaders:
    """Security headers on every HTTP response, `Cache-Control: no-store` on JSON that sets
    no caching of its own (tokens, users' data), and redirects made relative so that none
    points at whatever host the request's Host header named."""

    def __init__(self, app: ASGIApp, docs_paths: tuple[str, ...] = ("/docs", "/redoc")):
        self.app = app
        self.docs_paths = docs_paths
        self.ui = _ALWAYS + [(b"content-security-policy", UI_CSP.encode())]
        self.api = _ALWAYS + [(b"content-security-policy", API_CSP.encode())]
        self.docs = _ALWAYS + [(b"content-security-policy", DOCS_CSP.encode())]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if path == "/" or path.startswith("/static"):
            extra = self.ui
        elif path.startswith(self.docs_paths):
            extra = self.docs
        else:
            extra = self.api

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _secured(message, extra)}
            await send(message)

        await self.app(scope, receive, secured)


def _secured(start: Message, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    headers: list[tuple[bytes, bytes]] = []
    cache_set = json_body = False
    for name, value in start.get("headers", ()):
        if name == b"location" and 300 <= start["status"] < 400:
            value = _relative(value)
        elif name == b"cache-control":
            cache_set = True
        elif name == b"content-type":
            json_body = value.startswith(b"application/json")
        headers.append((name, value))
    if json_body and not cache_set:
        headers.append((b"cache-control", b"no-store"))
    return headers + extra


def _relative(location: bytes) -> bytes:
    """The path, query and fragment of an absolute redirect: this service only ever
    redirects to itself, and the absolute form was built from the untrusted Host header."""
    parts = urlsplit(location.decode("latin-1"))
    if not parts.scheme and not parts.netloc:
        return location
    relative = parts.path or "/"
    if parts.query:
        relative += "?" + parts.query
    if parts.fragment:
        relative += "#" + parts.fragment
    return relative.encode("latin-1")
