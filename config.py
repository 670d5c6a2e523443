"""Settings, read from the environment and an optional `.env` (see `.env.example`).

The limits an operator may need to tune have a setting here, with a default that suits the
embedded single-machine mode. Bounds of the protocol itself (a `client_msg_id` of at most 128
characters, the handshake parser's header line) are constants where they are checked.
"""

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

# Keys that tutorials and templates ship with; refusing them keeps a copy-pasted example
# from signing production tokens.
WEAK_KEYS = {
    "secret",
    "secret-key",
    "secret_key",
    "your-secret-key",
    "your_secret_key",
    "changeme",
    "change-me",
    "changethis",
    "password",
    "supersecret",
    "super-secret-key",
    "dev",
    "test",
    "your-secret-key-here",
    "mysecretkey",
    "jwt-secret",
}
MIN_KEY_LENGTH = 32
PROVIDER_SUFFIXES = ("_API_KEY", "_BASE_URL", "_MODELS")  # services/providers/presets.py


class _ProviderEnvironment(PydanticBaseSettingsSource):
    """The process environment's <X>_API_KEY / <X>_BASE_URL / <X>_MODELS, which no field
    names, as `provider_env`: the one place the providers' variables are read from it."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        found = {k.upper(): v for k, v in os.environ.items() if k.upper().endswith(PROVIDER_SUFFIXES)}
        return {"provider_env": found} if found else {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    # Storage and identity
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: SQLite file in data_dir
    secret_key: str | None = Field(None, repr=False)  # default: generated once and kept in data_dir
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "llm-chat-service"
    jwt_audience: str = "llm-chat-clients"
    access_token_expire_minutes: int = Field(60, ge=1, le=60 * 24 * 30)
    # Refresh tokens (services/refresh_tokens.py): an HttpOnly cookie that renews the access
    # token; each use rotates it and restarts its lifetime (a sliding session).
    refresh_token_ttl_days: float = Field(14, gt=0, le=365)
    # A rotated token shown again within this many seconds (two tabs renewing at once) gets
    # an access token but no new cookie; later, it is treated as stolen and its family revoked.
    refresh_reuse_grace_seconds: float = Field(10, ge=0, le=300)
    refresh_tokens_per_user: int = Field(50, ge=1, le=10_000)  # live sign-ins; the oldest goes first
    refresh_cookie_secure: bool | None = None  # Secure flag; None: when the request came over https

    # Users
    allow_registration: bool = True
    initial_user: str | None = None
    initial_password: str | None = Field(None, repr=False)

    # API keys (per-user long-lived credentials; services/api_keys.py)
    api_keys_per_user: int = Field(20, ge=1, le=1000)  # live keys a user may hold at once
    api_key_max_days: int = Field(3650, ge=1, le=36500)  # bound of `expires_in_days`
    # The HMAC key the stored key hashes are made with; default: the service's SECRET_KEY.
    # A separate one lets the JWT key rotate without invalidating every API key.
    api_key_hash_key: str | None = Field(None, repr=False)
    # `last_used_at` is written at most this often per key, not on every request.
    api_key_touch_interval: float = Field(60, ge=0)

    # Chats: search (services/search.py) and automatic titles (services/titles.py)
    search_max_query_chars: int = Field(200, ge=1, le=2000)
    search_max_terms: int = Field(8, ge=1, le=64)  # words of a query; the rest are ignored
    auto_title: bool = True  # ask the session's model for a title after its first answer
    auto_title_max_tokens: int = Field(24, ge=1, le=200)
    auto_title_timeout: float = Field(20, gt=0, le=300)

    # Models
    default_model: str = "offline/simulated"
    time_between_chunks: float = Field(0.03, ge=0)  # offline provider's pacing, seconds
    openai_api_key: str | None = Field(None, repr=False)
    openai_base_url: str | None = None

    # Providers: any <X>_API_KEY / <X>_BASE_URL / <X>_MODELS (environment or .env) enables one;
    # the presets and the rules are in services/providers/presets.py.
    model_list_ttl: float = Field(300, gt=0)  # seconds a provider's model list is cached
    model_list_error_ttl: float = Field(15, gt=0)  # ... and a failed listing, before asking again
    model_list_timeout: float = Field(5, gt=0)  # one listing call
    provider_connect_timeout: float = Field(10, gt=0)
    # OpenAI-compatible providers' streaming request: aiohttp directly, one shared session per
    # provider (services/providers/openai_http.py); httpx: through the SDK over httpx, the fallback.
    provider_http_transport: Literal["aiohttp", "httpx"] = "aiohttp"
    provider_max_connections: int = Field(1000, ge=1)  # per provider, all kept alive
    # Bytes read of an upstream's error body (aiohttp transport), and of the tail after [DONE].
    provider_error_body_max_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024)
    provider_check_timeout: float = Field(20, gt=0)  # GET /test and /models/{id}/check
    ollama_probe_timeout: float = Field(0.3, ge=0)  # start-up probe of a local Ollama; 0: no probe
    provider_env: dict[str, str] = Field(default_factory=dict, repr=False)  # filled below

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Between the environment and the .env file: the environment's values win over the file's.
        return init_settings, env_settings, _ProviderEnvironment(settings_cls), dotenv_settings, file_secret_settings

    @model_validator(mode="before")
    @classmethod
    def _collect_provider_env(cls, data: Any) -> Any:
        # pydantic-settings hands the .env file's unknown keys to this validator only (they are
        # dropped after it), so <X>_API_KEY lines of the .env actually read are kept here,
        # under the process environment's and the explicit ones.
        if isinstance(data, dict):
            collected = {
                str(k).upper(): v
                for k, v in data.items()
                if isinstance(v, str) and str(k).upper().endswith(PROVIDER_SUFFIXES)
            }
            given = data.get("provider_env")
            data["provider_env"] = {**collected, **(given if isinstance(given, dict) else {})}
        return data

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

    # Generation guards (seconds unless noted)
    first_token_timeout: float = Field(60, gt=0)
    idle_timeout: float = Field(30, gt=0)
    max_generation_seconds: float = Field(600, gt=0)
    provider_max_retries: int = Field(2, ge=0, le=10)  # before the first token only
    provider_retry_backoff: float = Field(0.5, ge=0)  # doubled on each retry
    loop_min_repeats: int = Field(4, ge=2)
    loop_min_chars: int = Field(300, ge=20)
    loop_max_period: int = Field(500, ge=1)

    # Graceful stop (SIGTERM): running generations end interrupted, then the server waits
    # this long at most for every open stream to deliver their done frames.
    shutdown_drain_timeout: float = Field(15, gt=0, le=300)

    # Streaming and persistence
    flush_interval: float = Field(1.0, gt=0)  # how often running text is written to the DB
    stream_log_max_frames: int = Field(10_000, ge=16)  # frames kept per generation
    stream_log_ttl: float = Field(900, gt=0)  # seconds a finished generation's log is kept
    sse_ping_interval: float = Field(15, gt=0)

    # Streaming performance
    # Coalescing: tokens that reach the producer within this many milliseconds of the last
    # chunk frame are sent together in the next one (one frame, one seq, their joined text);
    # the first token, and any token after a quiet spell, goes out alone at once, and none is
    # held longer than the window. 0 = one frame per token. Needs the embedded stream log.
    coalesce_window_ms: float = Field(0, ge=0, le=20)

    # OpenAI-compatible API (/v1, services/openai)
    # The answer length of a /v1 call that sets none (OpenAI's default is the model's limit).
    openai_default_max_tokens: int = Field(4096, ge=1, le=131_072)
    # Messages (or input items) one /v1 call may send, history included.
    openai_max_messages: int = Field(512, ge=1, le=1024)

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

    @field_validator("jwt_algorithm")
    @classmethod
    def _pinned_algorithm(cls, value: str) -> str:
        # Only HMAC algorithms: the service both issues and checks its tokens.
        if value not in {"HS256", "HS384", "HS512"}:
            raise ValueError("JWT_ALGORITHM must be one of HS256, HS384, HS512")
        return value

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            return url
        return f"sqlite+aiosqlite:///{self.data_dir / 'chat.db'}"

    def resolve_secret_key(self) -> str:
        """The configured key, or one generated once and kept in the data directory."""
        if self.secret_key is not None:
            check_secret_key(self.secret_key)
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            key = path.read_text().strip()
        else:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            key = secrets.token_urlsafe(48)
            path.touch(mode=0o600)
            path.write_text(key)
        check_secret_key(key)
        return key


def check_secret_key(key: str) -> None:
    if key.strip().lower() in WEAK_KEYS or len(key) < MIN_KEY_LENGTH:
        raise ValueError(
            f"SECRET_KEY is too weak: use at least {MIN_KEY_LENGTH} random characters "
            "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
            "or unset it to let the service generate and keep one in DATA_DIR."
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
