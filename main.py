"""Wires the application: settings, services, routers, error handlers, middleware.

Importing this module builds nothing: `create_app` is the factory the launchers serve
(`python -m serve`, i.e. uvicorn with `--factory main:create_app`); logging and tracing are
set up by those entry points. `main.app` is built on first access, for
`uvicorn main:app --reload` in development."""

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api import (
    access_log,
    admin,
    api_keys,
    chat,
    errors,
    generations,
    meta,
    openai_chat,
    openai_responses,
    openapi,
    ops,
    sessions,
    tokens,
    tree,
    ui,
    users,
    ws,
)
from api.lifecycle import DRAIN, Connections, graceful_shutdown
from api.middleware import BodySizeLimit, SecurityHeaders
from api.observe import Observe
from config import Settings, get_settings
from services.container import build
from services.observability import logs, metrics, probes, tracing
from services.users import seed_initial_user


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    services = build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[dict[str, Any]]:
        access_log.install()  # whoever serves the app: no query string (a token) in uvicorn's lines
        await services.start()
        await seed_initial_user(services.db, settings)
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
        connections: Connections = app.state.connections

        async def drain() -> None:  # awaited by api/serving.py's DrainingServer on SIGTERM
            await graceful_shutdown(services, connections)

        yield {DRAIN: drain}
        if refresher is not None:
            refresher.cancel()
        await services.stop()

    app = FastAPI(title="LLM chat service", version="1.0.0", lifespan=lifespan)
    app.state.services = services
    app.state.connections = Connections()
    errors.install(app)
    openapi.install(app, settings, services.providers)
    for router in (
        users.router,
        sessions.router,
        tree.router,
        chat.router,
        generations.router,
        meta.router,
        ws.router,
        openai_chat.router,
        openai_responses.router,
        ops.router,
        admin.router,
    ):
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


def __getattr__(name: str) -> FastAPI:
    """`main.app`: the app of the process's settings, built on first access and kept, with
    the logging and tracing set-up of an entry point (`uvicorn main:app` is one)."""
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    settings = get_settings()
    logs.configure(settings.log_format, settings.log_level)
    tracing.setup_from_env("llm-chat-service", os.environ)
    app = globals()["app"] = create_app(settings)
    return app
