"""Provider failures in one vocabulary, with secrets removed before a message leaves.

Every provider maps its SDK's errors to these codes through `failure()`, which scrubs the
message of anything shaped like a credential, and of the configured keys it is given: a
`Secrets` owned by the provider registry, which hands it to each provider it builds, and
whose `scrub` the registry and the discovery routes use for anything else they show.

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
    "provider_auth_failed": 502,
    "model_not_found": 404,
    "provider_rate_limited": 429,
    "upstream_timeout": 504,
    "upstream_unavailable": 503,
    "upstream_error": 502,
    "upstream_disconnected": 502,
    "provider_bad_request": 502,
    "provider_error": 502,
}

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


class Secrets:
    """The configured keys of one provider registry, removed wherever they appear."""

    def __init__(self) -> None:
        self._values: set[str] = set()

    def remember(self, value: str | None) -> None:
        if value and len(value.strip()) >= MIN_SECRET_LENGTH:
            self._values.add(value.strip())

    def scrub(self, text: str) -> str:
        """The text without these keys and without anything shaped like a credential."""
        for secret in sorted(self._values, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, REDACTED)
        return scrub(text)


def scrub(text: str) -> str:
    """The text without anything shaped like a credential (`Secrets.scrub` also removes the keys)."""
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + REDACTED, text)
    return text


def failure(
    provider: str,
    message: str,
    code: str,
    *,
    retryable: bool = False,
    status: int | None = None,
    secrets: Secrets | None = None,
) -> ProviderError:
    """A ProviderError whose message names the provider and carries no secret."""
    message = " ".join(str(message).split()) or "no message"
    if len(message) > 1000:
        message = message[:1000] + "..."
    text = f"{provider}: {message}"
    return ProviderError(secrets.scrub(text) if secrets else scrub(text), code=code, retryable=retryable, status=status)


def http_status(code: str) -> int:
    return HTTP_STATUS.get(code, 502)
