"""Which providers are configured: the table of known providers and the naming convention.

A provider is enabled by its environment variables (or the same lines in the `.env` file
the settings read), so a new one needs no code:

- `<X>_API_KEY`: the key. For a preset below, enough on its own: its base URL is known.
- `<X>_BASE_URL`: the endpoint. For a preset, overrides its URL; for a local server
  preset (Ollama, llama.cpp, vLLM, LM Studio) enough on its own, since those need no key.
- `<X>_API_KEY` together with `<X>_BASE_URL` for any other X: a generic OpenAI-compatible
  provider named `x` (lower case). An unrelated `*_API_KEY` without a base URL is ignored.
- `<X>_MODELS`: a comma list of model ids, offered in addition to the ones the provider
  lists (some servers list none, or list ids under another spelling), and used alone while
  the provider cannot be reached.
- Ollama is also picked up with no variable at all when it answers on its default URL at
  start-up (a probe of at most OLLAMA_PROBE_TIMEOUT seconds, made asynchronously by
  `ProviderRegistry.start`, so building the services does no I/O).

Models are addressed as `<provider>/<model>`; `offline/simulated` is always there.
"""

import logging
import re
from dataclasses import dataclass, field

import httpx

from config import Settings
from services.json_types import JSONObject

log = logging.getLogger(__name__)

OPENAI_COMPATIBLE = "openai-compatible"
ANTHROPIC = "anthropic"


@dataclass(frozen=True)
class Preset:
    name: str  # provider name, the prefix of its models, and (upper case) of its variables
    title: str
    kind: str = OPENAI_COMPATIBLE
    base_url: str | None = None  # None: the SDK's own default
    needs_key: bool = True  # False: a local server, enabled by its base URL alone
    key_aliases: tuple[str, ...] = ()  # other variables accepted for the key
    models: tuple[str, ...] = ()  # offered while the provider's own list is unavailable (and no <X>_MODELS)
    max_tokens_param: str = "max_tokens"  # OpenAI's own API wants max_completion_tokens
    autodetect: bool = False  # probed at start-up on base_url when nothing configures it


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("openai", "OpenAI", models=("gpt-4o-mini", "gpt-4o"), max_tokens_param="max_completion_tokens"),
        Preset(
            "anthropic",
            "Anthropic",
            kind=ANTHROPIC,
            base_url="https://api.anthropic.com",
            models=("claude-sonnet-5-5", "claude-haiku-5-5"),
        ),
        Preset("groq", "Groq", base_url="https://api.groq.com/openai/v1", models=("llama-3.3-70b-versatile",)),
        Preset("mistral", "Mistral", base_url="https://api.mistral.ai/v1", models=("mistral-small-latest",)),
        Preset("deepseek", "DeepSeek", base_url="https://api.deepseek.com/v1", models=("deepseek-chat",)),
        Preset("openrouter", "OpenRouter", base_url="https://openrouter.ai/api/v1", models=("openai/gpt-4o-mini",)),
        Preset(
            "together",
            "Together AI",
            base_url="https://api.together.xyz/v1",
            models=("meta-llama/Llama-3.3-70B-Instruct-Turbo",),
        ),
        Preset(
            "gemini",
            "Google Gemini (OpenAI-compatible endpoint)",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
            key_aliases=("GOOGLE_API_KEY",),
            models=("gemini-2.0-flash",),
        ),
        Preset("xai", "xAI", base_url="https://api.x.ai/v1"),
        Preset("fireworks", "Fireworks AI", base_url="https://api.fireworks.ai/inference/v1"),
        Preset("cerebras", "Cerebras", base_url="https://api.cerebras.ai/v1"),
        Preset("ollama", "Ollama (local)", base_url="http://127.0.0.1:11434/v1", needs_key=False, autodetect=True),
        Preset("llamacpp", "llama.cpp server (local)", needs_key=False),
        Preset("vllm", "vLLM (local)", needs_key=False),
        Preset("lmstudio", "LM Studio (local)", base_url="http://127.0.0.1:1234/v1", needs_key=False),
    )
}

RESERVED = {"offline"}  # the built-in provider's name cannot be taken
_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")


@dataclass
class ProviderConfig:
    name: str
    kind: str
    base_url: str | None
    api_key: str | None
    models: list[str] = field(default_factory=list)  # <X>_MODELS
    known_models: list[str] = field(default_factory=list)  # the preset's, when the provider lists none
    max_tokens_param: str = "max_tokens"
    source: str = "preset"  # "preset", "generic" or "probe"


def provider_environment(settings: Settings) -> dict[str, str]:
    """The provider variables in force: `Settings.provider_env` (the .env file's, then the
    process environment's, as config.py collects them), then the typed settings (OPENAI_*)."""
    env = dict(settings.provider_env)
    for var, value in (("OPENAI_API_KEY", settings.openai_api_key), ("OPENAI_BASE_URL", settings.openai_base_url)):
        if value:
            env[var] = value
    return {k: v.strip() for k, v in env.items() if v and v.strip()}


def _models(value: str | None) -> list[str]:
    return [m.strip() for m in (value or "").split(",") if m.strip()]


def discover(settings: Settings) -> list[ProviderConfig]:
    """The configured providers: presets in table order, then generic ones by name. A local
    server nothing configures comes with source "probe": the registry's `start` looks for it."""
    env = provider_environment(settings)
    found: list[ProviderConfig] = []
    for preset in PRESETS.values():
        var = preset.name.upper()
        key = env.get(f"{var}_API_KEY") or next((env[a] for a in preset.key_aliases if a in env), None)
        base_url = env.get(f"{var}_BASE_URL")
        models, known = _models(env.get(f"{var}_MODELS")), list(preset.models)
        if key or base_url:
            url = base_url or preset.base_url
            if url is None and preset.name != "openai":  # the SDK knows only OpenAI's own URL
                log.warning("%s_API_KEY is set but %s_BASE_URL is not: %s left out", var, var, preset.name)
                continue
            # OpenAI's own API wants max_completion_tokens; servers behind an OPENAI_BASE_URL may
            # predate it, and every one of them knows max_tokens.
            param = preset.max_tokens_param if url is None or "api.openai.com" in url else "max_tokens"
            found.append(ProviderConfig(preset.name, preset.kind, url, key, models, known, param))
        elif preset.autodetect and preset.base_url and settings.ollama_probe_timeout > 0:
            found.append(ProviderConfig(preset.name, preset.kind, preset.base_url, None, models, known, source="probe"))
    generic = sorted({k[: -len("_API_KEY")] for k in env if k.endswith("_API_KEY")})
    for var in generic:
        name = var.lower()
        if name in PRESETS or name in RESERVED or not _NAME.match(var) or f"{var}_BASE_URL" not in env:
            continue
        if any(var in p.key_aliases for p in PRESETS.values()):
            continue
        found.append(
            ProviderConfig(
                name,
                OPENAI_COMPATIBLE,
                env[f"{var}_BASE_URL"],
                env[f"{var}_API_KEY"],
                _models(env.get(f"{var}_MODELS")),
                source="generic",
            )
        )
    return found


async def probe(base_url: str, timeout: float) -> bool:
    """Whether an OpenAI-compatible server answers its model list at base_url, quickly."""
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            r = await client.get(base_url.rstrip("/") + "/models")
    except (httpx.HTTPError, OSError):
        return False
    if r.status_code == 200:
        log.info("found a local server at %s", base_url)
    return r.status_code == 200


def describe() -> list[JSONObject]:
    """The preset table for GET /help (no values, only how each provider is enabled)."""
    out = []
    for p in PRESETS.values():
        var = p.name.upper()
        enable = [f"{var}_API_KEY"] if p.needs_key else [f"{var}_BASE_URL"]
        if p.autodetect:
            enable.append(f"or running on {p.base_url}")
        out.append(
            {
                "name": p.name,
                "title": p.title,
                "kind": p.kind,
                "enable": " ".join(enable),
                "base_url": p.base_url,
                "models_variable": f"{var}_MODELS",
            }
        )
    out.append(
        {
            "name": "<x>",
            "title": "any other OpenAI-compatible server",
            "kind": OPENAI_COMPATIBLE,
            "enable": "<X>_API_KEY and <X>_BASE_URL",
            "base_url": None,
            "models_variable": "<X>_MODELS",
        }
    )
    return out
