"""OpenTelemetry traces, off unless the standard OTEL_* variables ask for them.

On when OTEL_TRACES_EXPORTER is `otlp` or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT,
OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, and OTEL_SDK_DISABLED is not true; the exporter
reads its other OTEL_* variables itself. Off, the SDK is never imported and every hook
below is one `is None` test. Spans: one per HTTP request (api/observe.py) and one per
generation with the GenAI semantic-convention attributes. A generation runs in another
task, or another process, than the request that queued it: the request's trace context is
kept per generation id (`capture`), travels in the RabbitMQ job (`carrier`, `adopt`),
and parents the generation's span (`start_generation`)."""

import logging
from collections import OrderedDict
from collections.abc import Mapping
from contextvars import Token
from typing import TYPE_CHECKING

from services.json_types import JSONObject

if TYPE_CHECKING:  # the SDK is imported only once tracing is on
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer, TracerProvider

log = logging.getLogger(__name__)

Carrier = dict[str, str]  # a W3C trace context: traceparent, tracestate
_tracer: "Tracer | None" = None  # once tracing is on
_pending: OrderedDict[str, Carrier] = OrderedDict()  # generation id -> its request's context
MAX_PENDING = 10_000  # generations cancelled while queued never pick theirs up


def enabled_by_env(env: Mapping[str, str]) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER", "").lower()
    if exporter == "none":
        return False
    return exporter == "otlp" or bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def setup_from_env(service_name: str, env: Mapping[str, str]) -> bool:
    """Turns tracing on if `env` (the entry point's os.environ) asks for it (once per process)."""
    if _tracer is not None or not enabled_by_env(env):
        return _tracer is not None
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning("OTEL_* asks for traces but the OpenTelemetry SDK or OTLP exporter is not installed")
        return False
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service_name)})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use(provider)
    return True


def use(tracer_provider: "TracerProvider | None") -> None:
    """Traces to this provider (tests pass one with an in-memory exporter); None: off."""
    global _tracer
    _tracer = tracer_provider.get_tracer("llm-chat-service") if tracer_provider is not None else None


def enabled() -> bool:
    return _tracer is not None


def start_http(method: str, headers: list[tuple[bytes, bytes]]) -> "tuple[Span, Token[Context]]":
    """(span, context token) for a request, continuing an incoming `traceparent` (tracing on)."""
    from opentelemetry import context, propagate, trace

    assert _tracer is not None  # the middleware starts spans only when enabled()
    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k in (b"traceparent", b"tracestate")}
    span = _tracer.start_span(
        method,
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method},
    )
    return span, context.attach(trace.set_span_in_context(span))


def end_http(span: "Span", token: "Token[Context]", route: str, status: int) -> None:
    from opentelemetry import context
    from opentelemetry.sdk.trace import ReadableSpan

    # A request whose traceparent says "not sampled" gets a non-recording span, which has
    # no name to extend (reading it raised AttributeError and failed the request).
    if isinstance(span, ReadableSpan):
        span.update_name(f"{span.name} {route}")
    span.set_attribute("http.route", route)
    span.set_attribute("http.response.status_code", status)
    context.detach(token)
    span.end()


def capture(generation_id: str) -> None:
    """Keeps the caller's trace context for the generation's span."""
    if _tracer is None:
        return
    from opentelemetry import propagate

    carrier: Carrier = {}
    propagate.inject(carrier)
    if carrier:
        _pending[generation_id] = carrier
        while len(_pending) > MAX_PENDING:
            _pending.popitem(last=False)


def carrier(generation_id: str) -> Carrier | None:
    """The kept context, handed on (into a job) and forgotten here."""
    return _pending.pop(generation_id, None) if _pending else None


def adopt(generation_id: str, context_carrier: object) -> None:
    """A worker: the context a job brought (any JSON: checked here), for the generation it names."""
    if _tracer is not None and isinstance(context_carrier, dict):
        _pending[generation_id] = {str(k): str(v) for k, v in context_carrier.items()}


def start_generation(generation_id: str, model: str) -> "Span | None":
    if _tracer is None:
        return None
    from opentelemetry import propagate, trace

    parent = propagate.extract(_pending.pop(generation_id, {}))
    provider, _, name = model.partition("/")
    return _tracer.start_span(
        f"chat {name or model}",
        context=parent,
        kind=trace.SpanKind.INTERNAL,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": name or model,
            "chat.generation_id": generation_id,
        },
    )


def end_generation(
    span: "Span", model: str, status: str, finish_reason: str, usage: JSONObject, error: JSONObject | None
) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_attribute("gen_ai.response.model", model.partition("/")[2] or model)
    span.set_attribute("gen_ai.usage.input_tokens", int(usage.get("prompt_tokens") or 0))
    span.set_attribute("gen_ai.usage.output_tokens", int(usage.get("completion_tokens") or 0))
    span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])
    span.set_attribute("chat.status", status)
    if error:
        span.set_attribute("error.type", str(error.get("code", "error")))
        span.set_status(Status(StatusCode.ERROR))
    span.end()
