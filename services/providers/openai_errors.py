"""Maps the `openai` SDK's exceptions to ProviderError codes (OpenAICompatProvider's listing
and its SDK transport; openai_http.py maps raw statuses to the same codes)."""

import openai

from services.errors import ProviderError
from services.providers.failures import Secrets, failure


def _message(exc: openai.OpenAIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str) and inner:
            return inner
        if body.get("message"):
            return str(body["message"])
    elif isinstance(body, str) and body.strip():
        return body
    return str(getattr(exc, "message", None) or exc)


def _refused(exc: BaseException) -> bool:
    """The SDK's aiohttp transport reports a refused connection as a connect timeout (it maps
    every aiohttp connection error to one); the OS error at the root tells them apart."""
    seen = exc.__cause__
    while seen is not None:
        if isinstance(seen, OSError) and not isinstance(seen, TimeoutError):
            return True
        seen = seen.__cause__
    return False


def map_error(exc: openai.OpenAIError, provider: str, secrets: Secrets | None = None) -> ProviderError:
    """Maps SDK errors to stable codes; `retryable` only for failures worth another try."""
    msg = secrets.scrub(_message(exc)) if secrets else _message(exc)
    status = getattr(exc, "status_code", None)
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return failure(provider, msg, "provider_auth_failed", status=status)
    if isinstance(exc, openai.NotFoundError):
        return failure(provider, msg, "model_not_found", status=status)
    if isinstance(exc, openai.RateLimitError):
        return failure(provider, msg, "provider_rate_limited", retryable=True, status=status)
    if isinstance(exc, openai.APITimeoutError):
        if not _refused(exc):
            return failure(provider, msg, "upstream_timeout", retryable=True)
        msg = "Connection error."  # what the SDK says of a refused connection over httpx
    if isinstance(exc, openai.APIConnectionError):  # (a timeout error is one too)
        return failure(provider, msg, "upstream_unavailable", retryable=True)
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return failure(provider, msg, "provider_bad_request", status=status)
    if isinstance(exc, openai.InternalServerError):
        return failure(provider, msg, "upstream_error", retryable=True, status=status)
    if isinstance(exc, openai.APIStatusError):
        return failure(provider, msg, "provider_error", status=status)
    if isinstance(exc, openai.APIError):  # an error event inside the stream: the server failed
        return failure(provider, msg, "upstream_error", retryable=True)
    return failure(provider, msg, "provider_error")
