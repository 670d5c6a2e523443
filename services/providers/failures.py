"""Provider failures in one vocabulary, with secrets removed before a message leaves.

Every provider maps its SDK's errors to these codes through `failure()`, which scrubs the
message; the registry and the discovery routes use `scrub()` for anything else they show.

| code                  | meaning                                   | retried | HTTP (/test, /check) |
| provider_auth_failed  | the upstream refused the key (401/403)    | no      | 502 |
| model_not_found       | the upstream has no such model (404)      | no      | 404 |
| provider_rate_limited | 429 from the upstream                     | yes     | 429 |
| upstream_timeout      | no answer in time                         | yes     | 504 |
| upstream_unavailable  | cannot connect                            | yes     | 503 |
| upstream_error        | 5xx, overloaded, or an error in the stream| yes     | 502 |
| upstream_disconnected | the connection broke while streaming      | no      | 502 |
| provider_bad_request  | the upstream rejected the request (400)   | no      | 502 |
| provider_error        | anything else                             | no      | 502 |
"""

import re

from services.errors import ProviderError

HTTP_STATUS = {
    "provider_auth_failed": 502, "model_not_found": 404, "provider_rate_limited": 429,
    "upstream_timeout": 504, "upstream_unavailable": 503, "upstream_error": 502,
    "upstream_disconnected": 502, "provider_bad_request": 502, "provider_error": 502,
}

_secrets: set[str] = set()
_PATTERNS = [
    re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}"),  # OpenAI, Anthropic (sk-ant-...), DeepSeek, OpenRouter keys
    re.compile(r"\b(?:gsk|xai|fw|csk)_?-?[A-Za-z0-9]{20,}"),  # Groq, xAI, Fireworks, Cerebras keys
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),  # Google API keys
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{4,}"),
    re.compile(r"(?i)((?:x-api-key|api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&]{4,}"),
    re.compile(r"(?i)([?&]key=)[^&\s\"']+"),
]
REDACTED = "[redacted]"
MIN_SECRET_LENGTH = 6  # shorter values would redact ordinary words


def remember_secret(value: str | None) -> None:
    """Registers a configured key, so that it is removed wherever it appears."""
    if value and len(value.strip()) >= MIN_SECRET_LENGTH:
        _secrets.add(value.strip())


def scrub(text: str) -> str:
    """The text without the configured keys and without anything shaped like a credential."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


def failure(provider: str, message: str, code: str, *, retryable: bool = False,
            status: int | None = None) -> ProviderError:
    """A ProviderError whose message names the provider and carries no secret."""
    message = " ".join(str(message).split()) or "no message"
    if len(message) > 1000:
        message = message[:1000] + "..."
    return ProviderError(scrub(f"{provider}: {message}"), code=code, retryable=retryable, status=status)


def http_status(code: str) -> int:
    return HTTP_STATUS.get(code, 502)
