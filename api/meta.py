"""Discovery and health: /health, /models, /help, /test and /models/{id}/check."""

import asyncio
import logging
import time
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServicesDep
from api.openapi import errors
from api.principal import CurrentUser
from services.container import Services
from services.errors import ProviderError
from services.providers import presets
from services.providers.base import ChatRequest, Usage
from services.providers.failures import HTTP_STATUS, http_status
from services.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)

router = APIRouter(tags=["meta"])


@router.get("/health", responses={503: {"description": "degraded: a component is down (same body)"}})
async def health(services: ServicesDep) -> JSONResponse:
    components: dict[str, dict[str, str]] = {}
    checks = {"database": services.db.ping, "stream_log": services.log.ping, "dispatch": services.dispatch.ping}
    for name, check in checks.items():
        try:
            await check()
            components[name] = {"status": "up"}
        except Exception as exc:
            components[name] = {"status": "down", "error": type(exc).__name__}
    ok = all(c["status"] == "up" for c in components.values())
    body = {
        "status": "ok" if ok else "degraded",
        "components": components,
        "mode": "embedded" if services.dispatch.runs_locally else "scale-out",
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/models", response_model=None)
async def models(services: ServicesDep) -> dict[str, Any]:
    """Every configured provider's models as `<provider>/<model>`, from the provider's own list
    (cached for MODEL_LIST_TTL seconds) plus `<X>_MODELS`; a provider that cannot be reached
    is listed under "providers" as down with its error, its configured models unavailable."""
    registry = services.providers
    statuses = await registry.all_status()
    default = registry.qualify(registry.default_model) if _resolvable(registry) else registry.default_model
    data = [
        {
            "id": f"{s.name}/{m}",
            "object": "model",
            "provider": s.name,
            "name": m,
            "kind": s.kind,
            "available": s.up,
            **({"default": True} if f"{s.name}/{m}" == default else {}),
        }
        for s in statuses
        for m in s.models
    ]
    return {
        "object": "list",
        "data": data,
        "default_model": default,
        "providers": [
            {
                "name": s.name,
                "kind": s.kind,
                "status": "up" if s.up else "down",
                "models": len(s.models),
                **({"error": s.error} if s.error else {}),
            }
            for s in statuses
        ],
    }


def _resolvable(registry: ProviderRegistry) -> bool:
    try:
        registry.split(registry.default_model)
        return True
    except Exception:
        return False


@router.get("/help", response_model=None)
async def help_(services: ServicesDep) -> dict[str, Any]:
    s = services.settings
    listing = await models(services)
    return {
        "service": "LLM chat service",
        "protocol": "docs/protocol.md, version 1.1",
        "auth": {
            "token": "POST /token (form: username, password)",
            "register": "POST /users",
            "rest": "Authorization: Bearer <jwt>",
            "websocket": [
                "Authorization header",
                "Sec-WebSocket-Protocol: bearer, <jwt>",
                'first frame {"type": "auth", "token": "<jwt>"}',
            ],
        },
        "endpoints": {
            "POST /set-llm": "create a session: model_name as <provider>/<model> (see models), "
            "temperature, max_tokens, top_p, system_prompt, fallback_models",
            "GET /sessions": "list sessions",
            "GET|PATCH|DELETE /sessions/{id}": "read, change, delete a session",
            "POST /chat": "send a message (sync; stream: true or Accept: text/event-stream; background: true). "
            "Sync: a failed answer is still 200, with status failed and error {code, message}",
            "WS /ws/{session_id}": "stream frames",
            "GET /generations/{id}": "generation state",
            "GET /generations/{id}/events": "SSE from ?after= or Last-Event-ID",
            "GET /stream/{id}": "SSE of a generation, or of a session's latest",
            "POST /generations/{id}/cancel": "stop a generation",
            "GET /models": "available models and each provider's status",
            "GET /test": "check the default model end to end (auth; spends a few tokens)",
            "GET /models/{provider}/{model}/check": "check one model end to end (auth; spends a few tokens)",
            "GET /health": "service and components",
        },
        "frames": ["accepted", "session", "chunk", "done", "error", "snapshot", "pong"],
        "client_frames": ["message", "cancel", "resume", "ping", "auth"],
        "provider_errors": {
            code: f"HTTP {status} on /test and /check; done.error.code in frames"
            for code, status in HTTP_STATUS.items()
        },
        "default_model": listing["default_model"],
        "models": listing["data"],
        "providers": listing["providers"],
        "configuring_providers": {
            "convention": "<PROVIDER>_API_KEY (and <PROVIDER>_BASE_URL where it applies) enables a provider; "
            "an unknown <X>_API_KEY with <X>_BASE_URL is a generic OpenAI-compatible provider x; "
            "<X>_MODELS (comma list) adds models; DEFAULT_MODEL picks the default",
            "presets": presets.describe(),
        },
        "limits": {
            "max_message_chars": s.max_message_chars,
            "ws_max_frame_bytes": s.ws_max_frame_bytes,
            "max_request_bytes": s.max_request_bytes,
            "max_queued_per_session": s.max_queued_per_session,
            "provider_max_retries": s.provider_max_retries,
        },
    }


async def _check(services: Services, model_name: str) -> JSONResponse:
    """One tiny request to the model: its latency, or the provider's error with its HTTP status."""
    provider, model = services.providers.split(model_name)
    qualified = f"{provider.name}/{model}"
    request = ChatRequest(model, [{"role": "user", "content": "Say OK."}], temperature=0.0, max_tokens=8)
    started = time.perf_counter()
    first: float | None = None
    text: list[str] = []
    usage: dict[str, Any] | None = None
    try:
        async with asyncio.timeout(services.settings.provider_check_timeout):
            events = provider.stream(request)
            try:
                async for event in events:
                    if isinstance(event, str):
                        first = first or time.perf_counter()
                        text.append(event)
                    elif isinstance(event, Usage):
                        usage = event.as_dict()
            finally:
                await events.aclose()
    except ProviderError as exc:
        return _failed(services, qualified, exc.code, exc.detail)
    except TimeoutError:
        return _failed(
            services,
            qualified,
            "upstream_timeout",
            f"{provider.name}: no answer within {services.settings.provider_check_timeout:g} s",
        )
    except Exception as exc:
        log.exception("checking %s failed", qualified)
        return _failed(services, qualified, "provider_error", f"{provider.name}: {type(exc).__name__}")
    now = time.perf_counter()
    return JSONResponse(
        {
            "ok": True,
            "model": qualified,
            "first_token_ms": round(((first or now) - started) * 1000, 1),
            "total_ms": round((now - started) * 1000, 1),
            "sample": "".join(text),
            "usage": usage,
        }
    )


def _failed(services: Services, model: str, code: str, message: str) -> JSONResponse:
    message = services.providers.scrub(message)
    return JSONResponse(
        {"ok": False, "model": model, "code": code, "detail": message, "error": {"code": code, "message": message}},
        status_code=http_status(code),
    )


@router.get("/test", responses=errors(404, 429, 502, 503, 504))
async def test_default_model(services: ServicesDep, user: CurrentUser) -> JSONResponse:
    """Checks the default model end to end with a tiny request: 200 with its latency, or the
    provider's error (502 bad key, 404 unknown model, 429 rate limited, 503 down, 504 timeout)."""
    return await _check(services, services.providers.default_model)


@router.get("/models/{model_id:path}/check", responses=errors(404, 429, 502, 503, 504))
async def check_model(model_id: str, services: ServicesDep, user: CurrentUser) -> JSONResponse:
    """Checks one offered model (`<provider>/<model>`) like /test; 422 if no provider offers it."""
    return await _check(services, await services.providers.validate(model_id))
