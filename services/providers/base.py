"""The provider interface: one streaming call, a model list, and a way to close.

`stream()` is an async generator yielding `str` text deltas, then optionally a `Usage`
and a `Finish`. Plain `str` for the per-token case keeps the hot path free of object
construction; closing the generator (aclose) must close the upstream request."""

import re
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

from services.json_types import JSONObject

# One message of a chat request: {"role": "system"|"user"|"assistant", "content": str},
# passed to the provider's API as is.
ChatMessage = dict[str, str]


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str  # the provider's own model id, without the "<provider>/" prefix
    messages: list[ChatMessage]
    temperature: float = 1.0
    max_tokens: int = 1024
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # stop sequences (OpenAI-compatible calls); the text ends before one


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    def as_dict(self) -> JSONObject:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens}


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str  # "stop" or "length"


StreamEvent = str | Usage | Finish


@dataclass
class ModelInfo:
    id: str  # "<provider>/<model>"
    provider: str
    name: str
    extra: JSONObject = field(default_factory=dict)


class Provider(ABC):
    name: str
    kind: str = "custom"
    configured_models: list[str] = []  # <X>_MODELS: offered besides the provider's own list
    known_models: list[str] = []  # offered when the provider lists no models (and none are configured)

    @abstractmethod
    def stream(self, request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
        """Async generator of events for one answer (its aclose closes the upstream request)."""

    @abstractmethod
    async def list_models(self) -> list[str]:
        """Model ids this provider offers (without the provider prefix)."""

    async def aclose(self) -> None:
        return None


_WORDISH = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """Offline token estimate for providers that report no usage: words and punctuation,
    long words counted per four characters, which tracks BPE tokenizers closely on prose."""
    return sum(max(1, len(w) // 4) if w[0].isalnum() else 1 for w in _WORDISH.findall(text))


def prompt_tokens(messages: list[ChatMessage]) -> int:
    return sum(estimate_tokens(m.get("content") or "") + 4 for m in messages)
