"""Wires the application: settings, services, routers, error handlers, middleware."""

import asyncio
import gc
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import (access_log, admin, api_keys, chat, errors, generations, meta, openai_chat, openai_responses,
                 openapi, ops, sessions, tokens, ui, users, ws)
from api.lifecycle import Connections, chain_signal_handlers
from api.middleware import BodySizeLimit, SecurityHeaders
from api.observe import Observe
from config import Settings, get_settings
from services.container import build
from services.observability import logs, metrics, probes, tracing
from services.users import seed_initial_user

access_log.install()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    logs.configure(settings.log_format, settings.log_level)
    tracing.setup_from_env("llm-chat-service")
    services = build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await services.start()
        await seed_initial_user(services.db, settings)
        chain_signal_handlers(services, app.state.connections)
        refresher = None
        if settings.metrics_enabled and settings.metrics_port:
            metrics.serve(settings.metrics_port)
            refresher = asyncio.create_task(probes.refresh_forever(services))
        # Everything alive now (modules, the app, pydantic and SQLAlchemy machinery) lives
        # as long as the process: freezing it keeps the collector from scanning it again in
        # every full collection, which otherwise lands as a multi-ms pause on whichever
        # request or token happens to trigger it.
        gc.collect()
        gc.freeze()
        yield
        if refresher is not None:
            refresher.cancel()
        await services.stop()

    app = FastAPI(title="LLM chat service", version="1.0.0", lifespan=lifespan)
    app.state.services = services
    app.state.connections = Connections()
    errors.install(app)
    openapi.install(app, settings, services.providers)
    for router in (users.router, sessions.router, chat.router, generations.router, meta.router, ws.router,
                   openai_chat.router, openai_responses.router, ops.router, admin.router):
        app.include_router(router)
    if settings.metrics_enabled and not settings.metrics_port:
        app.include_router(ops.metrics_router)
    for router in (chat.router, meta.router):  # the reference designs' /api/v1 paths
        app.include_router(router, prefix="/api/v1", include_in_schema=False)
    app.include_router(api_keys.router)
    app.include_router(tokens.router)  # not under /api/v1: the cookie's path is /token/refresh
    app.include_router(ui.router)
    if ui.STATIC_DIR.exists():
        app.mount("/static", StaticFiles(directory=ui.STATIC_DIR), name="static")
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    app.add_middleware(SecurityHeaders)  # on every response, the 413 included
    app.add_middleware(Observe)  # outermost: sees every request, refused ones too
    return app


app = create_app()
