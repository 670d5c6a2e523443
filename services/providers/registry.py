"""Which providers are configured, and resolution of `<provider>/<model>` names."""

import asyncio
import time
from dataclasses import dataclass

from config import Settings
from services.errors import InvalidInput, ProviderError
from services.providers.base import Provider
from services.providers.offline import OfflineProvider
from services.providers.openai_compat import OpenAICompatProvider

MODEL_LIST_TTL = 300.0


@dataclass
class ProviderStatus:
    name: str
    kind: str
    up: bool
    models: list[str]
    error: str | None = None


class ProviderRegistry:
    def __init__(self, providers: list[Provider], default_model: str):
        self.providers = {p.name: p for p in providers}
        self.default_model = default_model
        self._cache: dict[str, tuple[float, ProviderStatus]] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> "ProviderRegistry":
        providers: list[Provider] = [OfflineProvider(settings.time_between_chunks)]
        if settings.openai_api_key or settings.openai_base_url:
            providers.append(OpenAICompatProvider(
                "openai", settings.openai_base_url, settings.openai_api_key,
                request_timeout=settings.max_generation_seconds,
            ))
        return cls(providers, settings.default_model)

    def split(self, model_name: str) -> tuple[Provider, str]:
        """`provider/model` -> (provider, model); a bare name uses DEFAULT_MODEL's provider."""
        if "/" in model_name:
            prefix, model = model_name.split("/", 1)
            if prefix in self.providers:
                return self.providers[prefix], model
        default_provider = self.default_model.split("/", 1)[0]
        if default_provider in self.providers:
            return self.providers[default_provider], model_name
        raise InvalidInput(f"unknown provider in model {model_name!r}", code="unknown_model")

    def qualify(self, model_name: str) -> str:
        provider, model = self.split(model_name)
        return f"{provider.name}/{model}"

    async def status(self, name: str) -> ProviderStatus:
        cached = self._cache.get(name)
        if cached and time.monotonic() - cached[0] < MODEL_LIST_TTL:
            return cached[1]
        provider = self.providers[name]
        try:
            models = await asyncio.wait_for(provider.list_models(), timeout=10)
            status = ProviderStatus(name, provider.kind, True, models)
        except (ProviderError, asyncio.TimeoutError) as exc:
            fallback = getattr(provider, "configured_models", [])
            status = ProviderStatus(name, provider.kind, False, fallback, str(exc) or "timeout")
        self._cache[name] = (time.monotonic(), status)
        return status

    async def all_status(self) -> list[ProviderStatus]:
        return list(await asyncio.gather(*(self.status(n) for n in self.providers)))

    async def validate(self, model_name: str) -> str:
        """The qualified name of an available model, or 422 listing the available ones."""
        provider, model = self.split(model_name)
        status = await self.status(provider.name)
        if model in status.models or (not status.up and not status.models):
            return f"{provider.name}/{model}"
        available = [f"{s.name}/{m}" for s in await self.all_status() for m in s.models]
        raise InvalidInput(
            f"model {model_name!r} is not offered by any configured provider; "
            f"available: {', '.join(available) or 'none'}",
            code="unknown_model",
        )

    async def aclose(self) -> None:
        for provider in self.providers.values():
            await provider.aclose()
