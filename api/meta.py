"""Discovery and health: /health, /models, /help, /test."""

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import CurrentUser, ServicesDep
from services.providers.base import ChatRequest

router = APIRouter(tags=["meta"])


@router.get("/health")
async def health(services: ServicesDep):
    components = {}
    checks = {"database": services.db.ping, "stream_log": services.log.ping, "dispatch": services.dispatch.ping}
    for name, check in checks.items():
        try:
            await check()
            components[name] = {"status": "up"}
        except Exception as exc:
            components[name] = {"status": "down", "error": type(exc).__name__}
    ok = all(c["status"] == "up" for c in components.values())
    body = {"status": "ok" if ok else "degraded", "components": components,
            "mode": "embedded" if services.dispatch.runs_locally else "scale-out"}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/models")
async def models(services: ServicesDep):
    statuses = await services.providers.all_status()
    data = [{"id": f"{s.name}/{m}", "provider": s.name, "available": s.up}
            for s in statuses for m in s.models]
    return {"object": "list", "data": data, "default_model": services.settings.default_model,
            "providers": [{"name": s.name, "kind": s.kind, "status": "up" if s.up else "down",
                           **({"error": s.error} if s.error else {})} for s in statuses]}


@router.get("/help")
async def help_(services: ServicesDep):
    s = services.settings
    return {
        "service": "LLM chat service", "protocol": "PROTOCOL.md, version 1",
        "auth": {"token": "POST /token (form: username, password)", "register": "POST /users",
                 "rest": "Authorization: Bearer <jwt>",
                 "websocket": ["Authorization header", "Sec-WebSocket-Protocol: bearer, <jwt>",
                               'first frame {"type": "auth", "token": "<jwt>"}']},
        "endpoints": {
            "POST /set-llm": "create a session", "GET /sessions": "list sessions",
            "GET|PATCH|DELETE /sessions/{id}": "read, change, delete a session",
            "POST /chat": "send a message (sync; stream: true or Accept: text/event-stream; background: true)",
            "WS /ws/{session_id}": "stream frames", "GET /generations/{id}": "generation state",
            "GET /generations/{id}/events": "SSE from ?after= or Last-Event-ID",
            "GET /stream/{id}": "SSE of a generation, or of a session's latest",
            "POST /generations/{id}/cancel": "stop a generation",
            "GET /models": "available models", "GET /test": "check the default model",
            "GET /health": "service and components",
        },
        "frames": ["accepted", "session", "chunk", "done", "error", "snapshot", "pong"],
        "client_frames": ["message", "cancel", "resume", "ping", "auth"],
        "models": (await models(services))["data"],
        "limits": {"max_message_chars": s.max_message_chars, "ws_max_frame_bytes": s.ws_max_frame_bytes,
                   "max_request_bytes": s.max_request_bytes, "max_queued_per_session": s.max_queued_per_session},
    }


@router.get("/test")
async def test_default_model(services: ServicesDep, user: CurrentUser):
    """Checks the default model end to end with a tiny request."""
    provider, model = services.providers.split(services.settings.default_model)
    started = time.perf_counter()
    first = None
    text = []
    try:
        events = provider.stream(ChatRequest(model, [{"role": "user", "content": "Say OK."}], max_tokens=5))
        try:
            async for event in events:
                if isinstance(event, str):
                    first = first or time.perf_counter()
                    text.append(event)
        finally:
            await events.aclose()
    except Exception as exc:
        return JSONResponse({"ok": False, "model": services.settings.default_model,
                             "error": {"code": getattr(exc, "code", "provider_error"),
                                       "message": getattr(exc, "detail", str(exc))}}, status_code=502)
    now = time.perf_counter()
    return {"ok": True, "model": services.settings.default_model,
            "first_token_ms": round(((first or now) - started) * 1000, 1),
            "total_ms": round((now - started) * 1000, 1), "sample": "".join(text)}
