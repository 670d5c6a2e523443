"""Probes and metrics: GET /livez, GET /readyz, GET /metrics (GET /health, the detailed
per-component report, is in api/meta.py)."""

import hmac

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from api.deps import ServicesDep
from services.errors import Unauthorized
from services.observability import metrics, probes

router = APIRouter(tags=["ops"])


@router.get("/livez", response_model=None)
async def livez() -> dict[str, str]:
    """The process answers. No dependency is checked: restarting a process does not fix a
    database or a Redis that is down."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """200 when a message sent now would be accepted and stored, else 503 with what is not."""
    checks = await probes.readiness(services)
    ok = all(value == "up" for value in checks.values())
    return JSONResponse({"status": "ready" if ok else "not_ready", "checks": checks}, status_code=200 if ok else 503)


metrics_router = APIRouter(tags=["ops"])


@metrics_router.get("/metrics", response_class=Response)
async def metrics_route(request: Request, services: ServicesDep) -> Response:
    """Prometheus text format. With METRICS_TOKEN set, `Authorization: Bearer <token>`."""
    token = services.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("GET /metrics needs the metrics bearer token.", code="not_authenticated")
    await probes.refresh_gauges(services)
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)
