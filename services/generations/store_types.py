"""The rows the generation store hands out: frozen dataclasses, never ORM objects or driver
rows, so that no caller depends on which implementation (services/generations/store.py)
read them, and none can change a row behind the store's back."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from services.providers.base import ChatRequest

ACTIVE = ("queued", "running")
JSONDict = dict[str, Any]


class ChatRef(Protocol):
    """What a send needs of its session (a ChatSession row satisfies it)."""

    @property
    def id(self) -> str: ...
    @property
    def model_name(self) -> str: ...
    @property
    def title(self) -> str: ...


@dataclass(frozen=True)
class Job:
    generation_id: str
    model: str
    fallback_models: list[str]
    request: ChatRequest


@dataclass(frozen=True)
class Turn:
    generation_id: str
    status: str
    position: int  # the session's active generations ahead of this one
    created: bool  # False when client_msg_id matched an earlier send
    job: Job | None = None  # claimed with it (create_turn's claim_for)


@dataclass(frozen=True)
class GenerationRow:
    """An answer's row in `messages`, as `get` and `latest` return it."""

    pk: int
    id: str
    session_id: str
    role: str
    content: str
    status: str
    created_at: datetime
    generation_id: str | None
    client_msg_id: str | None
    parent_id: str | None
    model: str | None
    finish_reason: str | None
    last_seq: int
    seq_reserved: int
    usage: JSONDict | None
    error: JSONDict | None
    started_at: datetime | None
    finished_at: datetime | None
    worker_id: str | None
    heartbeat_at: datetime | None


@dataclass(frozen=True)
class Interrupted:
    """What `end_interrupted` stored: the text up to chunk `seq`; the done frame is seq + 1."""

    session_id: str
    content: str
    seq: int
    usage: JSONDict
    model: str | None


@dataclass(frozen=True)
class Branch:
    """What to store: `op` is regenerate, edit or continue; `text` the edited message."""

    user_id: str
    session_id: str
    message_id: str
    op: str
    text: str | None = None
    client_msg_id: str | None = None


@dataclass(frozen=True)
class NewCall:
    """An OpenAI-compatible call's session (its `chat_sessions` values) and its earlier
    messages, stored with its turn (services/openai/conversation.py)."""

    chat: JSONDict
    history: list[tuple[str, str]]  # (role, text), oldest first
    text: str  # the turn
