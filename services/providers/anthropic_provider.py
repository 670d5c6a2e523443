"""Anthropic's Messages API through the official `anthropic` SDK, streamed.

The Messages API differs from chat completions in ways this module absorbs: the system
prompt is a top-level `system` parameter, the conversation must alternate user/assistant
(consecutive turns of one role are merged), `max_tokens` is required, sampling parameters
are not sent (see stream()), usage comes from `message_start` (input) and `message_delta`
(output), and a reply cut by `max_tokens` ends with stop_reason "max_tokens"."""

from collections.abc import AsyncGenerator
from typing import cast

import anthropic
import httpx
import httpx2
from anthropic import AsyncStream
from anthropic.types import RawMessageStreamEvent

from services.errors import ProviderError
from services.json_types import JSONObject
from services.providers.base import ChatMessage, ChatRequest, Finish, Provider, StreamEvent, Usage
from services.providers.failures import Secrets, failure

LENGTH_STOPS = {"max_tokens", "model_context_window_exceeded"}


def to_messages(messages: list[ChatMessage]) -> tuple[str | None, list[ChatMessage]]:
    """(system, messages) for the Messages API: system turns joined into the top-level
    parameter, empty turns dropped (the API rejects empty text), same-role turns merged."""
    system: list[str] = []
    out: list[ChatMessage] = []
    for m in messages:
        content = m.get("content") or ""
        if m["role"] == "system":
            if content.strip():
                system.append(content)
            continue
        if not content.strip():
            continue
        role = "assistant" if m["role"] == "assistant" else "user"
        if out and out[-1]["role"] == role:
            out[-1]["content"] += "\n\n" + content
        else:
            out.append({"role": role, "content": content})
    if out and out[0]["role"] == "assistant":  # the API wants the user to speak first
        out.insert(0, {"role": "user", "content": "(conversation continued)"})
    return ("\n\n".join(system) or None), out


class AnthropicProvider(Provider):
    kind = "anthropic"

    def __init__(
        self,
        name: str,
        base_url: str | None,
        api_key: str | None,
        request_timeout: float = 600.0,
        models: list[str] | None = None,
        known_models: list[str] | None = None,
        connect_timeout: float = 10.0,
        secrets: Secrets | None = None,
    ):
        self.name = name
        self.base_url = base_url
        self.configured_models = list(models or [])
        self.known_models = list(known_models or [])
        self.secrets = secrets if secrets is not None else Secrets()  # the registry's, shared
        self.secrets.remember(api_key)
        self.client = anthropic.AsyncAnthropic(
            api_key=api_key or "not-needed",
            base_url=base_url,
            max_retries=0,  # retries are the runner's, and only before the first token
            timeout=anthropic.Timeout(request_timeout, connect=connect_timeout),
        )

    async def list_models(self) -> list[str]:
        try:
            return [m.id async for m in self.client.models.list(limit=1000)]
        except anthropic.AnthropicError as exc:
            raise map_error(exc, self.name, self.secrets) from None
        except (httpx.HTTPError, httpx2.HTTPError) as exc:
            raise failure(
                self.name, f"listing models failed ({type(exc).__name__})", "upstream_unavailable", retryable=True
            ) from None

    async def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        system, messages = to_messages(request.messages)
        # No temperature / top_p: the API version this SDK speaks (2026-10-21) rejects any
        # sampling parameter with 400, and the SDK no longer takes them.
        params: JSONObject = dict(model=request.model, messages=messages, max_tokens=request.max_tokens, stream=True)
        if system:
            params["system"] = system
        if request.stop:
            params["stop_sequences"] = list(request.stop)
        try:
            # `params` has stream=True: the SDK's streaming overload, which a dict of
            # parameters cannot select for the type checker.
            stream = cast(AsyncStream[RawMessageStreamEvent], await self.client.messages.create(**params))
        except anthropic.AnthropicError as exc:
            raise map_error(exc, self.name, self.secrets) from None
        prompt = completion = 0
        stop_reason = None
        try:
            async with stream:  # leaving it (also by aclose of this generator) closes the HTTP stream
                async for event in stream:
                    if event.type == "content_block_delta":
                        delta = event.delta
                        if delta.type == "text_delta" and delta.text:
                            yield delta.text
                    elif event.type == "message_start":
                        u = event.message.usage
                        prompt = (
                            (u.input_tokens or 0)
                            + (getattr(u, "cache_creation_input_tokens", 0) or 0)
                            + (getattr(u, "cache_read_input_tokens", 0) or 0)
                        )
                        completion = u.output_tokens or 0
                    elif event.type == "message_delta":
                        stop_reason = event.delta.stop_reason or stop_reason
                        if event.usage is not None:
                            completion = event.usage.output_tokens or completion  # cumulative
        except anthropic.AnthropicError as exc:
            raise map_error(exc, self.name, self.secrets) from None
        except (httpx.HTTPError, httpx2.HTTPError) as exc:
            raise failure(
                self.name, f"connection lost mid-stream ({type(exc).__name__})", "upstream_disconnected"
            ) from None
        yield Usage(prompt, completion)
        yield Finish("length" if stop_reason in LENGTH_STOPS else "stop")

    async def aclose(self) -> None:
        await self.client.close()


# The error types of Anthropic's error bodies, for errors that arrive inside a 200 stream.
_BY_TYPE = {
    "authentication_error": ("provider_auth_failed", False),
    "permission_error": ("provider_auth_failed", False),
    "not_found_error": ("model_not_found", False),
    "rate_limit_error": ("provider_rate_limited", True),
    "invalid_request_error": ("provider_bad_request", False),
    "request_too_large": ("provider_bad_request", False),
    "overloaded_error": ("upstream_error", True),
    "api_error": ("upstream_error", True),
    "timeout_error": ("upstream_timeout", True),
}


def _message(exc: anthropic.AnthropicError) -> str:
    api_message = getattr(exc, "api_message", None)
    if api_message:
        return str(api_message)
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict) and body["error"].get("message"):
        return str(body["error"]["message"])
    return str(getattr(exc, "message", None) or exc)


def map_error(exc: anthropic.AnthropicError, provider: str, secrets: Secrets | None = None) -> ProviderError:
    """Parallel to openai_errors.map_error: the same codes, `retryable` where another try may help."""
    msg = secrets.scrub(_message(exc)) if secrets else _message(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
        return failure(provider, msg, "provider_auth_failed", status=status)
    if isinstance(exc, anthropic.NotFoundError):
        return failure(provider, msg, "model_not_found", status=status)
    if isinstance(exc, anthropic.RateLimitError):
        return failure(provider, msg, "provider_rate_limited", retryable=True, status=status)
    if isinstance(exc, anthropic.APITimeoutError):
        return failure(provider, msg, "upstream_timeout", retryable=True)
    if isinstance(exc, anthropic.APIConnectionError):
        return failure(provider, msg, "upstream_unavailable", retryable=True)
    if isinstance(exc, anthropic.BadRequestError | anthropic.UnprocessableEntityError):
        return failure(provider, msg, "provider_bad_request", status=status)
    if isinstance(exc, anthropic.InternalServerError):  # 5xx, 529 overloaded
        return failure(provider, msg, "upstream_error", retryable=True, status=status)
    if isinstance(exc, anthropic.APIStatusError):
        if status is not None and status < 400:  # an `error` event inside the stream
            code, retryable = _BY_TYPE.get(getattr(exc, "type", None) or "", ("upstream_error", True))
            return failure(provider, msg, code, retryable=retryable)
        if status == 413:
            return failure(provider, msg, "provider_bad_request", status=status)
        return failure(provider, msg, "provider_error", status=status)
    return failure(provider, msg, "provider_error")
