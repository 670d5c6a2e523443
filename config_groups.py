"""Groups of settings that `config.Settings` is made of, beyond the core ones it declares
itself: what a request may send, the scale-out backends, operations (metrics, logs, usage,
admin) and the per-user resource limits. Each group is a plain model; only `Settings` reads
the environment, so a group is never configured on its own."""

import ipaddress
from typing import Literal

from pydantic import BaseModel, Field, field_validator


class InputLimits(BaseModel):
    # Input limits
    max_request_bytes: int = Field(1_048_576, ge=1024)
    max_message_chars: int = Field(32_000, ge=1)
    max_system_prompt_chars: int = Field(16_000, ge=0)
    max_history_messages: int = Field(200, ge=1)  # most recent messages sent as context
    ws_max_frame_bytes: int = Field(65_536, ge=1024)
    ws_auth_timeout: float = Field(10, gt=0)
    ws_max_connections_per_user: int = Field(64, ge=1)
    ws_max_messages_per_minute: int = Field(120, ge=1)
    allow_query_token: bool = False
    max_queued_per_session: int = Field(32, ge=1)

    # Input hardening (sec-input): request heads (api/serving.py) and unauthenticated frames.
    # A request line plus headers over MAX_HEADER_BYTES, one header line over
    # MAX_HEADER_LINE_BYTES (the WebSocket handshake parser's own line limit is 8192 bytes) or
    # more than MAX_HEADERS headers is 431; a head not complete in HEADER_TIMEOUT seconds is 408.
    max_header_bytes: int = Field(16_384, ge=1024, le=1_048_576)
    max_header_line_bytes: int = Field(8_190, ge=256, le=8_190)
    max_headers: int = Field(100, ge=16, le=1000)
    header_timeout: float = Field(10, gt=0, le=300)
    # The first frame of a socket not yet authenticated is an auth frame: a token, not a chat.
    ws_auth_frame_max_bytes: int = Field(4096, ge=512)


class ScaleOutSettings(BaseModel):
    # Scale-out backends (unset: embedded in-process implementations)
    redis_url: str | None = None
    rabbitmq_url: str | None = None

    # Scale-out (used only when REDIS_URL / RABBITMQ_URL are set; see docs/architecture.md)
    # Namespaces every Redis key and channel, so deployments (or test runs) can share a Redis.
    redis_key_prefix: str = "chat:"
    # Durable job queue; the cancel fanout exchange is named after it ("<queue>.cancel").
    rabbitmq_queue: str = "generations"
    # Unacked jobs a worker holds = sessions it drains at once; bounds its concurrent generations.
    rabbitmq_prefetch: int = Field(16, ge=1, le=1000)
    # A running generation whose heartbeat (written every FLUSH_INTERVAL) is older than this is
    # ended `interrupted` by a reaper; also the TTL of worker liveness keys and session leases.
    # Several flush intervals, so a slow DB write is not mistaken for a dead worker.
    worker_heartbeat_timeout: float = Field(15, gt=0)
    # How often every scale-out process looks for dead generations and stuck queues.
    reaper_interval: float = Field(5, gt=0)
    # A session with a queued generation this old and nothing running gets its job published
    # again (covers a replica that died between storing a message and publishing its job).
    stuck_queue_after: float = Field(60, gt=0)
    # Texts that show commands (reliab-infra): the address clients reach this service at;
    # unset, such texts use a placeholder instead of guessing one.
    public_base_url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/\S*)?$", max_length=2048)

    # Broker restarts (reliab-infra): jobs accepted while RabbitMQ is away wait in a backlog
    # that retries with this backoff (doubling, capped) and at once when the connection is
    # back; the cap is also the reconnect interval, so it bounds the delay after a restart.
    broker_retry_initial: float = Field(0.2, gt=0, le=60)
    broker_retry_max: float = Field(2.0, gt=0, le=60)
    # Jobs a replica holds for the broker; past it the oldest wait for the STUCK_QUEUE_AFTER sweep.
    broker_backlog_max: int = Field(100_000, ge=1, le=10_000_000)
    # On SIGTERM a worker lets running generations finish this long, then ends them interrupted.
    worker_shutdown_grace: float = Field(20, ge=0)

    # Crash-safe seqs and dead workers (reliab-core)
    # Chunk seqs a running answer may send beyond what is stored as reserved: each flush
    # stores seq + SEQ_RESERVE, and an answer that reaches its reservation before the next
    # flush waits for one extra write. After a crash, the done frame's seq is placed above
    # the reservation, so it is above every seq that was sent.
    seq_reserve: int = Field(256, ge=1, le=1_000_000)
    # Scale-out: how often every process checks whether the workers of running answers are
    # still alive (their liveness keys); a dead worker's answers are ended at that pace.
    dead_worker_check_interval: float = Field(1.0, gt=0, le=60)


class OperationsSettings(BaseModel):
    # Operations (issue 16): metrics, traces, logs, usage, budgets, admin
    # GET /metrics in the Prometheus text format; off, on its own port (0: the service's
    # port), or behind a bearer token (unset: no auth, like most exporters).
    metrics_enabled: bool = True
    metrics_port: int = Field(0, ge=0, le=65535)
    metrics_token: str | None = Field(None, repr=False)
    worker_metrics_port: int = Field(0, ge=0, le=65535)  # a worker's /metrics; 0: none
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # Message text never reaches the logs unless this is on (debugging only).
    log_message_text: bool = False
    # A user's role, disabled flag and budgets are cached per process this long: a send
    # looks them up without a database round trip. Admin actions clear the cache at once
    # on the process that made them; other processes see them within this time.
    user_policy_ttl: float = Field(2.0, ge=0, le=300)
    usage_max_days: int = Field(366, ge=1, le=3660)  # widest GET /usage?from=&to= range
    admin_page_max: int = Field(500, ge=1, le=10_000)  # users per admin listing page


class LimitSettings(BaseModel):
    # Sign-in limiter, per-user resource limits (services/limits/). Counted with the `limits`
    # library: in process memory when embedded, in Redis (REDIS_URL) across replicas.
    # Defaults sit far above what a person at a keyboard does; a user's own values can be
    # raised or lowered by an operator (users.limits, services/limits/overrides.py).
    login_max_failures: int = Field(10, ge=1, le=100_000)  # per account, from any address ...
    login_max_failures_per_client: int = Field(50, ge=1, le=1_000_000)  # ... per address, any account
    login_failure_window: float = Field(300, gt=0, le=86_400)  # ... within this many seconds, then 429
    # Comma-separated addresses or networks of reverse proxies whose X-Forwarded-For names the
    # client; none by default: the peer address is the client.
    trusted_proxies: str = ""
    limiter_max_entries: int = Field(10_000, ge=100, le=10_000_000)  # counters kept in memory, at most
    user_requests_per_minute: int = Field(600, ge=1, le=1_000_000)  # authenticated requests and sockets
    user_max_running_generations: int = Field(8, ge=1, le=10_000)  # sessions answering at once
    user_max_queued_generations: int = Field(64, ge=1, le=100_000)  # answers queued or running, in total
    user_sessions_per_hour: int = Field(300, ge=1, le=1_000_000)
    user_max_open_streams: int = Field(32, ge=1, le=100_000)  # WebSockets + SSE streams at once
    registrations_per_hour_per_client: int = Field(20, ge=1, le=1_000_000)
    user_limits_cache_ttl: float = Field(30, ge=0, le=3600)  # seconds a user's overrides are cached

    @field_validator("trusted_proxies")
    @classmethod
    def _proxy_networks(cls, value: str) -> str:
        for part in filter(None, (p.strip() for p in value.split(","))):
            ipaddress.ip_network(part, strict=False)  # a malformed entry fails at start-up
        return value
