"""The service's Prometheus metrics, in one registry per process.

Everything here is updated once per generation, request or connection, never per token:
token counts are added when a generation ends. Labels take a bounded set of values
(statuses, finish reasons, provider names, route templates, error codes), never a user,
session or generation id. In the scale-out mode every API replica and every worker keeps
and serves its own (no multiprocess mode): Prometheus scrapes each process and sums."""

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
    start_http_server,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from services.json_types import JSONObject

# A `_created` series per counter doubles the scrape for nothing here. (The ignore:
# prometheus_client leaves this function unannotated.)
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

# Time to first token spans cold local models to hosted ones; durations go up to the
# MAX_GENERATION_SECONDS default.
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60)
DURATION_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GENERATIONS_STARTED = Counter(
    "chat_generations_started_total", "Generations claimed and started by this process", ["provider"], registry=REGISTRY
)
GENERATIONS_ENDED = Counter(
    "chat_generations_ended_total",
    "Generations ended by this process",
    ["status", "finish_reason", "provider"],
    registry=REGISTRY,
)
GENERATIONS_RUNNING = Gauge("chat_generations_running", "Generations running in this process", registry=REGISTRY)
GENERATIONS_QUEUED = Gauge(
    "chat_generations_queued", "Generations waiting to start (all processes, from the database)", registry=REGISTRY
)
TTFT = Histogram(
    "chat_time_to_first_token_seconds",
    "From the start of a generation to its first token",
    ["provider"],
    buckets=TTFT_BUCKETS,
    registry=REGISTRY,
)
DURATION = Histogram(
    "chat_generation_duration_seconds",
    "From the start of a generation to its end",
    ["provider", "status"],
    buckets=DURATION_BUCKETS,
    registry=REGISTRY,
)
TOKENS = Counter(
    "chat_tokens_total",
    "Tokens of ended generations (provider-reported, or counted)",
    ["type", "provider"],
    registry=REGISTRY,
)
PROVIDER_ERRORS = Counter(
    "chat_provider_errors_total", "Failed provider requests, by error code", ["provider", "code"], registry=REGISTRY
)
RETRIES = Counter(
    "chat_provider_retries_total", "Provider requests retried before the first token", ["provider"], registry=REGISTRY
)
FALLBACKS = Counter(
    "chat_fallbacks_total", "Generations that moved on to a fallback model", ["provider"], registry=REGISTRY
)
GUARDS = Counter("chat_guards_fired_total", "Generations ended by a guard", ["kind"], registry=REGISTRY)
STREAMS_OPEN = Gauge(
    "chat_streams_open", "Open streaming connections (SSE responses, WebSockets)", ["transport"], registry=REGISTRY
)
READERS_OPEN = Gauge(
    "chat_readers_open", "Generation relays in progress (one per followed generation)", ["transport"], registry=REGISTRY
)
RESUMES = Counter("chat_resumes_total", "Readers that started after seq 0 (a resume)", ["transport"], registry=REGISTRY)
SNAPSHOTS = Counter(
    "chat_snapshots_total", "Snapshot frames served in place of frames no longer kept", registry=REGISTRY
)
WS_CONNECTIONS = Counter("chat_websocket_connections_total", "WebSocket handshakes received", registry=REGISTRY)
HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests, by route template and status",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "HTTP request time until the response starts",
    ["method", "route"],
    buckets=HTTP_BUCKETS,
    registry=REGISTRY,
)
QUOTA_REFUSALS = Counter(
    "chat_quota_refusals_total", "Sends refused over a token budget", ["period"], registry=REGISTRY
)

GUARD_ENDINGS = {"timeout", "loop", "length"}


def provider_of(model: str) -> str:
    """The provider part of `<provider>/<model>`: a bounded label, the model name is not."""
    return model.split("/", 1)[0] if "/" in model else (model or "unknown")


def record_end(
    provider: str,
    status: str,
    finish_reason: str,
    ending: str,
    usage: JSONObject,
    started: float,
    first_token_at: float | None,
    ended: float,
) -> None:
    GENERATIONS_ENDED.labels(status, finish_reason, provider).inc()
    DURATION.labels(provider, status).observe(max(0.0, ended - started))
    if first_token_at is not None:
        TTFT.labels(provider).observe(max(0.0, first_token_at - started))
    TOKENS.labels("prompt", provider).inc(usage.get("prompt_tokens") or 0)
    TOKENS.labels("completion", provider).inc(usage.get("completion_tokens") or 0)
    if ending in GUARD_ENDINGS:
        GUARDS.labels(ending).inc()


def serve(port: int) -> None:
    """/metrics on a port of its own, from a thread (METRICS_PORT, WORKER_METRICS_PORT)."""
    start_http_server(port, registry=REGISTRY)


def exposition() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
