"""The API process: `python -m serve [uvicorn's options]`.

uvicorn serving the factory `main:create_app` with the service's options (api/serving.py's
UVICORN_ARGS: bounded request heads, no per-message deflate, no proxy headers), its log
configuration (LOG_FORMAT, LOG_LEVEL) and its `DrainingServer`, whose graceful stop ends
running generations and delivers their done frames before the sockets close. Every option
of the `uvicorn` command is accepted and parsed by uvicorn itself (e.g. --host, --port,
--reload); --workers above 1 is refused: run one process per replica (scripts/cluster.py).
`uvicorn main:app --reload` still serves the app in development, with uvicorn's plain
shutdown."""

import os
import sys
from collections.abc import Sequence
from typing import Any

import uvicorn
from uvicorn.main import main as uvicorn_command
from uvicorn.supervisors import ChangeReload

from api.serving import UVICORN_ARGS, DrainingServer
from config import Settings, get_settings
from services.observability import logs, tracing

APP = "main:create_app"


def uvicorn_config(argv: Sequence[str], settings: Settings) -> uvicorn.Config:
    """uvicorn.Config from uvicorn's own command line, after the service's defaults."""
    with uvicorn_command.make_context("python -m serve", [APP, "--factory", *UVICORN_ARGS, *argv]) as ctx:
        params: dict[str, Any] = dict(ctx.params)
    app = params.pop("app")
    app_dir = params.pop("app_dir")
    if app_dir is not None:
        sys.path.insert(0, app_dir)
    for name in ("reload_dirs", "reload_includes", "reload_excludes"):
        params[name] = params[name] or None
    if params["log_config"] is None:
        params["log_config"] = logs.uvicorn_config(settings.log_format, settings.log_level)
    return uvicorn.Config(app, **params)


def main(argv: Sequence[str] | None = None) -> None:
    settings = get_settings()
    config = uvicorn_config(sys.argv[1:] if argv is None else argv, settings)  # applies uvicorn's log config
    logs.configure(settings.log_format, settings.log_level)
    tracing.setup_from_env("llm-chat-service", os.environ)
    if config.workers > 1:
        raise SystemExit("python -m serve: --workers must be 1; run one process per replica instead")
    server = DrainingServer(config)
    if config.should_reload:
        ChangeReload(config, target=server.run, sockets=[config.bind_socket()]).run()
    else:
        server.run()
    if not server.started and not config.should_reload:
        raise SystemExit(3)  # uvicorn's own exit status for a failed start-up


if __name__ == "__main__":
    main()
