"""The job dispatch interface (submit, cancel, run) and the per-generation control."""

import asyncio
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from services.generations.store_protocol import Job


class Control:
    """Lets anyone stop a running generation and say why; the runner reads `reason`."""

    __slots__ = ("reason", "task")

    def __init__(self) -> None:
        self.reason: str | None = None  # "cancelled", "timeout", "shutdown"
        self.task: asyncio.Task[Any] | None = None

    def stop(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
            if self.task is not None and not self.task.done():
                self.task.cancel()


class JobDispatch(ABC):
    """Submit runs a session's queued generations in order, one at a time; cancel reaches
    whichever runner holds the generation."""

    runs_locally: bool = True  # generations run in this process (embedded mode)

    @abstractmethod
    async def submit(self, session_id: str, generation_id: str, job: "Job | None" = None) -> None:
        """`job`: the generation was already claimed for this process (see `claimer`)."""

    def claimer(self, session_id: str) -> str | None:
        """The worker id under which a new generation of this idle session may be claimed
        in the same transaction that stores it, saving the drainer's two round trips
        before the upstream request; None when another process or a queue decides."""
        return None

    @abstractmethod
    async def cancel(self, generation_id: str) -> None: ...

    async def start(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        """Closes what `shutdown` kept open for requests still served (the broker connection)."""
        return None
