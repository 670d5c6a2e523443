"""The one place where domain errors become HTTP responses and WebSocket close codes."""

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services import errors
from services.providers.failures import http_status as provider_http_status

log = logging.getLogger(__name__)

HTTP_STATUS: dict[type[errors.DomainError], int] = {
    errors.NotFound: 404,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.Conflict: 409,
    errors.InvalidInput: 422,
    errors.RateLimited: 429,
    errors.ProviderError: 502,
    errors.Unavailable: 503,
}
WS_CLOSE: dict[type[errors.DomainError], int] = {
    errors.NotFound: 4404,
    errors.Unauthorized: 4401,
    errors.Forbidden: 4403,
    errors.RateLimited: 4429,
}
STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    431: "headers_too_large",
    429: "rate_limited",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}


def http_status(exc: errors.DomainError) -> int:
    if isinstance(exc, errors.ProviderError):
        return provider_http_status(exc.code)
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 400


def ws_close_code(exc: errors.DomainError) -> int:
    for cls in type(exc).__mro__:
        if cls in WS_CLOSE:
            return WS_CLOSE[cls]
    return 1011


def rate_limit_headers(exc: errors.RateLimited) -> dict[str, str]:
    """Retry-After, and the X-RateLimit-* trio when a counted limit was hit (Reset in
    seconds from now, like Retry-After)."""
    retry = str(max(1, math.ceil(exc.retry_after)))
    headers = {"Retry-After": retry}
    if exc.limit is not None:
        headers.update(
            {
                "X-RateLimit-Limit": str(exc.limit),
                "X-RateLimit-Remaining": str(max(0, exc.remaining)),
                "X-RateLimit-Reset": retry,
            }
        )
    return headers


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def error_response(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status, headers=headers)


# The OpenAI-compatible routes answer OpenAI's error body, whose SDKs pick the exception
# class by status: a request they would refuse is 400 there (ours say 422), and a model
# nobody offers is 404, as OpenAI answers it.
OPENAI_PREFIX = "/v1/"
OPENAI_STATUS = {"unknown_model": 404}
OPENAI_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}


def openai_error_body(status: int, code: str, detail: str, param: str | None = None) -> dict[str, Any]:
    kind = OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": detail, "type": kind, "param": param, "code": code}}


def respond(
    request: Request,
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> JSONResponse:
    """The native body, or OpenAI's under /v1/ (with the statuses its SDKs expect)."""
    if not request.url.path.startswith(OPENAI_PREFIX):
        return error_response(status, code, detail, headers)
    status = OPENAI_STATUS.get(code, 400 if status == 422 else status)
    return JSONResponse(openai_error_body(status, code, detail, param), status_code=status, headers=headers)


def _validation_param(exc: RequestValidationError) -> str | None:
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        if loc:
            return ".".join(loc)
    return None


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def allowed_methods(request: Request) -> str:
    """Every method some route at this path answers: Starlette's 405 names only the first
    route's, so `Allow: GET` would hide PATCH and DELETE on the same path. Asked through
    each route's public `matches`, with a fresh scope per method."""
    base = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("root_path", ""),
        "headers": [],
        "query_string": b"",
    }
    return ", ".join(
        method
        for method in METHODS
        if any(route.matches({**base, "method": method})[0] is Match.FULL for route in request.app.router.routes)
    )


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.DomainError)
    async def domain_error(request: Request, exc: errors.DomainError) -> JSONResponse:
        headers: dict[str, str] | None = None
        if isinstance(exc, errors.RateLimited):
            headers = rate_limit_headers(exc)
        elif isinstance(exc, errors.DatabaseUnavailable):
            # A failover in progress (services/db.py retried once), which the client may
            # retry, not a bug of ours.
            log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc.__cause__)
            headers = {"Retry-After": "1"}
        elif isinstance(exc, errors.Unauthorized):
            headers = {"WWW-Authenticate": "Bearer"}
        return respond(request, http_status(exc), exc.code, exc.detail, headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return respond(request, 422, "validation_error", _validation_message(exc), param=_validation_param(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "http_error")
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            headers = {**(headers or {}), "Allow": allowed_methods(request)}
        return respond(request, exc.status_code, code, str(exc.detail), headers)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            # A connection lost under an ORM session outside Database.run (session and account
            # routes): the same failover the store reports as DatabaseUnavailable, so the same 503.
            log.warning("database connection lost on %s %s: %s", request.method, request.url.path, exc.orig)
            return respond(
                request,
                503,
                "database_unavailable",
                "The database is unavailable for a moment; retry shortly.",
                {"Retry-After": "1"},
            )
        # Logged with the trace for operators; the client gets no internals.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, 500, "internal_error", "Internal server error; it has been logged.")
