"""The state of one running generation, shared by the runner's token path, its periodic
flush (persistence.py) and the generation-end hook, and the ways a generation can end."""

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from services.providers.base import Usage

if TYPE_CHECKING:
    from opentelemetry.trace import Span

# (status, finish_reason) for each way a generation can end
ENDINGS = {
    "stop": ("completed", "stop"),
    "length": ("incomplete", "length"),
    "timeout": ("incomplete", "timeout"),
    "loop": ("incomplete", "loop"),
    "cancelled": ("cancelled", "cancelled"),
    "error": ("failed", "error"),
    "shutdown": ("failed", "interrupted"),
}
SHUTDOWN_ERROR = {
    "code": "interrupted",
    "message": "The server stopped while this answer was generated; the text so "
    "far is kept. Send the message again to get a full answer.",
}


@dataclass
class GenerationState:
    generation_id: str
    seq: int = 0
    parts: list[str] = field(default_factory=list)
    last_token_at: float = 0.0
    usage: Usage | None = None
    model: str = ""
    watchdog: asyncio.TimerHandle | None = None
    flushed: int = -1  # seq of the text last written
    reserved: int = 0  # stored bound: no chunk seq above it may be sent (see Persistence._reserve)
    started: float = 0.0
    first_token_at: float | None = None
    span: "Span | None" = None  # the generation's trace span, when tracing is on

    def content(self) -> str:
        if len(self.parts) > 1:
            self.parts[:] = ["".join(self.parts)]
        return self.parts[0] if self.parts else ""


class Stop(Exception):
    """A guard ends the answer (loop, length): the reason is its ending."""

    def __init__(self, reason: str):
        self.reason = reason
