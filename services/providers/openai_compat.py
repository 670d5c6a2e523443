"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, llama.cpp, vLLM,
Groq, ...) through the official `openai` SDK."""

from collections.abc import AsyncIterator

import httpx
import openai

from services.errors import ProviderError
from services.providers.base import ChatRequest, Finish, Provider, StreamEvent, Usage


class OpenAICompatProvider(Provider):
    kind = "openai-compatible"

    def __init__(self, name: str, base_url: str | None, api_key: str | None,
                 request_timeout: float = 600.0, models: list[str] | None = None):
        self.name = name
        self.base_url = base_url
        self.configured_models = models or []
        # Retries and timeouts are the generation runner's job (guards, retry policy):
        # the SDK's own would hide a stall and could duplicate text.
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key or "not-needed",
            max_retries=0,
            timeout=httpx.Timeout(request_timeout, connect=10.0),
        )

    async def list_models(self) -> list[str]:
        try:
            page = await self.client.models.list()
        except openai.OpenAIError as exc:
            raise map_error(exc, self.name) from None
        return [m.id for m in page.data]

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        try:
            stream = await self.client.chat.completions.create(
                model=request.model,
                messages=request.messages,
                temperature=request.temperature,
                top_p=request.top_p,
                max_tokens=request.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
            )
        except openai.OpenAIError as exc:
            raise map_error(exc, self.name) from None
        finish = None
        usage = None
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        usage = Usage(chunk.usage.prompt_tokens or 0, chunk.usage.completion_tokens or 0)
                    for choice in chunk.choices:
                        text = choice.delta.content if choice.delta else None
                        if text:
                            yield text
                        if choice.finish_reason:
                            finish = choice.finish_reason
        except openai.OpenAIError as exc:
            raise map_error(exc, self.name, started=True) from None
        except httpx.HTTPError as exc:
            raise ProviderError(f"{self.name}: connection lost mid-stream ({type(exc).__name__})",
                                code="upstream_disconnected") from None
        if usage is not None:
            yield usage
        yield Finish("length" if finish == "length" else "stop")

    async def aclose(self) -> None:
        await self.client.close()


def _message(exc: openai.OpenAIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("message"):
            return str(body["message"])
    return str(getattr(exc, "message", None) or exc)


def map_error(exc: openai.OpenAIError, provider: str, started: bool = False) -> ProviderError:
    """Maps SDK errors to stable codes; `retryable` only for failures worth another try."""
    msg = f"{provider}: {_message(exc)}"
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return ProviderError(msg, code="provider_auth_failed", status=status)
    if isinstance(exc, openai.NotFoundError):
        return ProviderError(msg, code="model_not_found", status=status)
    if isinstance(exc, openai.RateLimitError):
        return ProviderError(msg, code="provider_rate_limited", retryable=True, status=status)
    if isinstance(exc, openai.APITimeoutError):
        return ProviderError(msg, code="upstream_timeout", retryable=True)
    if isinstance(exc, openai.APIConnectionError):
        return ProviderError(msg, code="upstream_unavailable", retryable=True)
    if isinstance(exc, openai.BadRequestError):
        return ProviderError(msg, code="provider_bad_request", status=status)
    if isinstance(exc, openai.InternalServerError):
        return ProviderError(msg, code="upstream_error", retryable=True, status=status)
    return ProviderError(msg, code="provider_error", status=status)
