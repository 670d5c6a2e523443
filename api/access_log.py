"""Request logs never carry query strings: a query may hold a credential (`?token=`, which
the service refuses but uvicorn logs before the app sees it), and log files travel further
than the service does.

uvicorn writes the path with its query into the arguments of its access record
(`"GET /x?token=... HTTP/1.1" 401`) and of its WebSocket lines (`"WebSocket /ws?token=..."`).
The filter cuts the query from those arguments, so every formatter (the text default, JSON,
anything reading `record.args` or `record.getMessage()`) sees only the path."""

import logging
from typing import TypeGuard

_LOGGERS = ("uvicorn.access", "uvicorn.error")


class StripQueryStrings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and any(_has_query(a) for a in args):
            record.args = tuple(a.split("?", 1)[0] if _has_query(a) else a for a in args)
        return True


def _has_query(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and value.startswith("/") and "?" in value


def install() -> None:
    """Idempotent; a filter on the logger itself, so handlers and formats added later by a
    log configuration are covered too."""
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, StripQueryStrings) for f in logger.filters):
            logger.addFilter(StripQueryStrings())
