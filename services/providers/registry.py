"""Which providers are configured, their model lists (cached), and resolution of
`<provider>/<model>` names. How providers are enabled is in presets.py."""

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from config import Settings
from services.errors import InvalidInput, ProviderError
from services.providers.anthropic_provider import AnthropicProvider
from services.providers.base import Provider
from services.providers.failures import Secrets
from services.providers.offline import OfflineProvider
from services.providers.openai_compat import OpenAICompatProvider
from services.providers.presets import ANTHROPIC, ProviderConfig, discover, probe

log = logging.getLogger(__name__)

STALE_RECHECK = 10.0  # an unknown model triggers a fresh listing when the cached one is older


@dataclass
class ProviderStatus:
    name: str
    kind: str
    up: bool
    models: list[str]
    error: str | None = None
    checked_at: float = field(default_factory=time.monotonic)


def build_provider(config: ProviderConfig, settings: Settings, secrets: Secrets | None = None) -> Provider:
    common: dict[str, Any] = dict(
        request_timeout=settings.max_generation_seconds,
        models=config.models,
        known_models=config.known_models,
        connect_timeout=settings.provider_connect_timeout,
        secrets=secrets,
    )
    if config.kind == ANTHROPIC:
        return AnthropicProvider(config.name, config.base_url, config.api_key, **common)
    return OpenAICompatProvider(
        config.name,
        config.base_url,
        config.api_key,
        max_tokens_param=config.max_tokens_param,
        transport=settings.provider_http_transport,
        max_connections=settings.provider_max_connections,
        error_body_max=settings.provider_error_body_max_bytes,
        **common,
    )


class ProviderRegistry:
    def __init__(
        self,
        providers: list[Provider],
        default_model: str,
        *,
        model_list_ttl: float = 300.0,
        model_list_error_ttl: float = 15.0,
        model_list_timeout: float = 10.0,
        secrets: Secrets | None = None,
        settings: Settings | None = None,
        probes: list[ProviderConfig] | None = None,
    ):
        self.providers = {p.name: p for p in providers}
        self.secrets = secrets if secrets is not None else Secrets()  # the configured keys, for scrub()
        self._settings = settings
        self._probes = list(probes or [])  # local servers to look for at start-up
        self.default_model = default_model
        self.ttl = model_list_ttl
        self.error_ttl = model_list_error_ttl
        self.list_timeout = model_list_timeout
        self._cache: dict[str, ProviderStatus] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProviderRegistry":
        """The offline provider, then every provider the settings configure (presets.py); the
        local servers found by a probe are added by `start`."""
        offline = OfflineProvider(settings.time_between_chunks, settings.public_base_url)
        providers: list[Provider] = [offline]
        secrets = Secrets()
        configs = discover(settings)
        for config in configs:
            if config.source != "probe":
                providers.append(build_provider(config, settings, secrets))
                log.info(
                    "provider %s (%s, %s) at %s",
                    config.name,
                    config.kind,
                    config.source,
                    config.base_url or "the SDK's default URL",
                )
        registry = cls(
            providers,
            settings.default_model,
            model_list_ttl=settings.model_list_ttl,
            model_list_error_ttl=settings.model_list_error_ttl,
            model_list_timeout=settings.model_list_timeout,
            secrets=secrets,
            settings=settings,
            probes=[c for c in configs if c.source == "probe"],
        )
        offline.other_models = registry.offered_now
        return registry

    async def start(self) -> None:
        """Probes, all at once, for the local servers nothing configures (Ollama on its
        default URL): one that answers becomes a provider. Then checks DEFAULT_MODEL."""
        settings, probes, self._probes = self._settings, self._probes, []
        if settings is not None and probes:
            found = await asyncio.gather(*(probe(c.base_url or "", settings.ollama_probe_timeout) for c in probes))
            for config, up in zip(probes, found, strict=True):  # gather: one result per probe
                if up and config.name not in self.providers:
                    self.providers[config.name] = build_provider(config, settings, self.secrets)
                    log.info("provider %s (%s, probe) at %s", config.name, config.kind, config.base_url)
        prefix = self.default_model.split("/", 1)[0]
        if "/" in self.default_model and prefix not in self.providers:
            log.warning(
                "DEFAULT_MODEL %s names provider %r, which is not configured (configured: %s)",
                self.default_model,
                prefix,
                ", ".join(self.providers),
            )

    def scrub(self, text: str) -> str:
        """The text without the configured keys and anything shaped like a credential."""
        return self.secrets.scrub(text)

    def split(self, model_name: str) -> tuple[Provider, str]:
        """`provider/model` -> (provider, model); a bare name uses DEFAULT_MODEL's provider.
        A first segment that is no provider is part of the model id (`meta-llama/...`)."""
        if "/" in model_name:
            prefix, model = model_name.split("/", 1)
            if prefix in self.providers and model:
                return self.providers[prefix], model
        default_provider = self.default_model.split("/", 1)[0]
        if default_provider in self.providers:
            return self.providers[default_provider], model_name
        raise InvalidInput(
            f"unknown provider in model {model_name!r}; configured providers: {', '.join(self.providers)}",
            code="unknown_model",
        )

    def qualify(self, model_name: str) -> str:
        provider, model = self.split(model_name)
        return f"{provider.name}/{model}"

    async def status(self, name: str, max_age: float | None = None) -> ProviderStatus:
        """The provider's model list and health, cached (failures for a shorter time)."""
        cached = self._cache.get(name)
        if cached and self._fresh(cached, max_age):
            return cached
        lock = self._locks.setdefault(name, asyncio.Lock())
        async with lock:  # one listing at a time per provider; the others wait for its result
            cached = self._cache.get(name)
            if cached and self._fresh(cached, max_age):
                return cached
            status = await self._list(self.providers[name])
            self._cache[name] = status
            return status

    def _fresh(self, status: ProviderStatus, max_age: float | None) -> bool:
        age = time.monotonic() - status.checked_at
        limit = self.ttl if status.up else self.error_ttl
        return age < (limit if max_age is None else min(limit, max_age))

    async def _list(self, provider: Provider) -> ProviderStatus:
        configured = list(provider.configured_models)
        unlisted = configured or list(provider.known_models)  # what to offer without a list
        try:
            listed = await asyncio.wait_for(provider.list_models(), timeout=self.list_timeout)
        except ProviderError as exc:
            if exc.code == "model_not_found":  # up, but without a model list endpoint
                return ProviderStatus(provider.name, provider.kind, True, unlisted)
            return ProviderStatus(provider.name, provider.kind, False, unlisted, self.secrets.scrub(exc.detail))
        except TimeoutError:
            return ProviderStatus(
                provider.name,
                provider.kind,
                False,
                unlisted,
                f"{provider.name}: no model list within {self.list_timeout:g} s",
            )
        except Exception as exc:  # a provider's bug must not hide the others
            log.exception("listing the models of %s failed", provider.name)
            return ProviderStatus(
                provider.name, provider.kind, False, unlisted, f"{provider.name}: {type(exc).__name__}"
            )
        # The provider's own list first, then the configured ids it does not list.
        return ProviderStatus(provider.name, provider.kind, True, listed + [m for m in configured if m not in listed])

    def offered_now(self) -> list[str]:
        """The other providers' models, as far as known without asking anyone (the cached
        lists of providers that are up, else what is configured): for texts, never a check."""
        models = []
        for name, provider in self.providers.items():
            if provider.kind == "offline":
                continue
            status = self._cache.get(name)
            listed = status.models if status is not None and status.up else list(provider.configured_models)
            models += [f"{name}/{m}" for m in listed]
        return models

    async def all_status(self) -> list[ProviderStatus]:
        return list(await asyncio.gather(*(self.status(n) for n in self.providers)))

    async def validate(self, model_name: str) -> str:
        """The qualified name of an offered model, or 422 listing the available ones. A model
        of a provider that cannot be reached right now is accepted: it cannot be checked."""
        provider, model = self.split(model_name)
        status = await self.status(provider.name)
        if not _offered(model, status.models) and status.up:
            status = await self.status(provider.name, max_age=STALE_RECHECK)  # newly pulled model?
        if _offered(model, status.models) or not status.up:
            return f"{provider.name}/{model}"
        available = [f"{s.name}/{m}" for s in await self.all_status() if s.up for m in s.models]
        raise InvalidInput(
            f"model {model_name!r} is not offered by any configured provider; "
            f"available: {', '.join(available) or 'none'}",
            code="unknown_model",
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            try:
                await provider.aclose()
            except Exception:
                log.warning("closing provider %s failed", provider.name, exc_info=True)


def _offered(model: str, models: list[str]) -> bool:
    # Ollama lists `llama3.2:latest` and answers to `llama3.2` as well.
    return model in models or (":" not in model and f"{model}:latest" in models)
