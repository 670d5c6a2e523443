"""Settings, read from the environment and an optional `.env` (see `.env.example`).

The limits an operator may need to tune have a setting here or in a group of config_groups.py,
with a default that suits the embedded single-machine mode. Bounds of the protocol itself (a
`client_msg_id` of at most 128 characters, the handshake parser's header line) are constants
where they are checked.
"""

import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from config_groups import InputLimits, LimitSettings, OperationsSettings, ScaleOutSettings

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


class Settings(InputLimits, ScaleOutSettings, OperationsSettings, LimitSettings, BaseSettings):
    # Fields named model_* are settings (model_list_ttl): older pydantic-settings reserve the
    # prefix with a warning, which the test suite turns into an error (scripts/test-lowest.sh).
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, protected_namespaces=("settings_",)
    )

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
