"""Operations telemetry: Prometheus metrics (metrics), OpenTelemetry traces (tracing),
structured logs (logs), probes, and the generation-end hook (generation).

Here: what the current request is, for the layers below the HTTP middleware: its fields
for the request's log event (the auth dependency adds the user), and its transport (for
the readers-open gauge). Context variables: tasks a request starts inherit them."""

from contextvars import ContextVar

from services.json_types import JSONObject

REQUEST: ContextVar[JSONObject | None] = ContextVar("request_fields", default=None)
TRANSPORT: ContextVar[str] = ContextVar("transport", default="internal")


def note(**fields: object) -> None:
    """Adds fields to the current request's log event (no-op outside a request)."""
    current = REQUEST.get()
    if current is not None:
        current.update(fields)
