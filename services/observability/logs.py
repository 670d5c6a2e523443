"""Log set-up: LOG_FORMAT=text (default) or json, for this process and uvicorn's loggers.

In JSON mode every line is one object: {"ts", "level", "logger", "message", ...fields}, the
fields being what the event passed as `extra` (request_id, user_id, generation_id,
durations, token counts...). Query strings (a URL can carry a token) are cut from uvicorn's
records by api/access_log.py, on the loggers themselves, whatever the format.
`uvicorn_config()` is the dict uvicorn takes as --log-config (scripts/run.sh writes it with
`python -m services.observability.logs`), so its start-up lines are formatted too;
`configure()` applies the same to a running process (the app under a plain
`uvicorn main:app`, the worker, tests)."""

import json
import logging
import sys
import time

from services.json_types import JSONObject

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord's own attributes: whatever else a record carries came from `extra`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message",
    "asctime",
    "taskName",
    "color_message",
}
UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access")
MODULE = "services.observability.logs"  # also when run as __main__ (scripts/run.sh)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: JSONObject = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            client, method, path, version, status = record.args
            out.update(event="access", client=client, method=method, path=path, status_code=status)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def _formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure(fmt: str = "text", level: str = "INFO") -> None:
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    for handler in root.handlers:
        handler.setFormatter(_formatter(fmt))
    root.setLevel(level)
    for name in UVICORN:  # handlers uvicorn installed before importing the app
        for handler in logging.getLogger(name).handlers:
            if fmt == "json" or name != "uvicorn.access":
                handler.setFormatter(_formatter(fmt))
    # The HTTP clients log every upstream request at INFO: a formatted line per generation,
    # on the path to its first token. Their warnings still show.
    for name in ("httpx", "httpx2"):
        logging.getLogger(name).setLevel(logging.WARNING)


def uvicorn_config(fmt: str = "text", level: str = "INFO") -> JSONObject:
    json_mode = fmt == "json"
    formatter = {"()": f"{MODULE}.JsonFormatter"} if json_mode else {"format": TEXT_FORMAT}
    access = (
        formatter
        if json_mode
        else {
            "()": "uvicorn.logging.AccessFormatter",
            "fmt": '%(asctime)s %(levelname)s %(client_addr)s - "%(request_line)s" %(status_code)s',
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"default": formatter, "access": access},
        "handlers": {
            "default": {"class": "logging.StreamHandler", "formatter": "default", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "access", "stream": "ext://sys.stdout"},
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "level": level, "propagate": True},
            "uvicorn.error": {"level": level},
            "uvicorn.access": {"handlers": ["access"], "level": level, "propagate": False},
        },
    }


if __name__ == "__main__":
    from config import get_settings

    settings = get_settings()
    print(json.dumps(uvicorn_config(settings.log_format, settings.log_level)))
