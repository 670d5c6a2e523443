"""The generation store's interface: what the service, the runner, the drains, the scale-out
reaper and recovery, the tree and the OpenAI-compatible calls ask of the database about
answers. Two implementations (services/generations/store.py): SQLite on its one thread and
PostgreSQL on SQLAlchemy Core. Rows cross it as store_types' frozen dataclasses; errors as
services/errors.py's domain errors (DatabaseUnavailable for a lost connection), never as a
driver's or SQLAlchemy's.

Every state change is a conditional UPDATE on status, so a cancel racing a start, or two
workers racing one job, have exactly one winner."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from services.generations.store_types import (
    ACTIVE,
    Branch,
    ChatRef,
    GenerationRow,
    Interrupted,
    Job,
    JSONDict,
    NewCall,
    Turn,
)

# The limits' check (services/limits/service.py), run in a send's transaction on the session of
# each of the user's queued or running answers: whatever it raises stores nothing.
ActiveCheck = Callable[[list[str]], None]
Seal = Callable[[], Awaitable[tuple[str, int] | None]]


class GenerationStore(Protocol):
    max_history: int  # turns of history a claim puts in the prompt
    max_queued: int  # active answers a session may have
    seq_reserve: int  # chunk seqs a claimed answer may send before its first flush

    async def create_turn(
        self, chat: ChatRef, text: str, client_msg_id: str | None = None, *, claim_for: str | None = None
    ) -> Turn:
        """Stores the message and its queued answer. With `claim_for`, an answer with nothing
        ahead of it is claimed in the same transaction (`Turn.job`). The same `client_msg_id`
        again returns the first send's turn (`created` False)."""
        ...

    async def create_owned_turn(
        self,
        user_id: str,
        session_id: str,
        text: str,
        client_msg_id: str | None = None,
        *,
        claim_for: str | None = None,
        check: ActiveCheck | None = None,
    ) -> Turn:
        """`create_turn` into a session given by id, if `user_id` owns it (NotFound otherwise),
        checked in the same transaction, after `check`."""
        ...

    async def create_branch(self, branch: Branch, *, claim_for: str | None = None) -> Turn:
        """A regenerated answer, an edited message and its answer, or a continuation."""
        ...

    async def create_call(self, call: NewCall, *, claim_for: str | None = None) -> Turn:
        """An OpenAI-compatible call's session, its history and its turn, in one transaction."""
        ...

    async def get(self, generation_id: str, user_id: str | None = None) -> GenerationRow:
        """The answer (of this user, when given), or NotFound."""
        ...

    async def latest(self, session_id: str) -> GenerationRow | None: ...

    async def active_in_session(self, session_id: str) -> list[str]:
        """Ids of the session's queued and running answers, oldest first."""
        ...

    async def claim(self, generation_id: str, worker_id: str) -> Job | None:
        """queued -> running for `worker_id`, with its request; None if it was not queued."""
        ...

    async def flush(self, changed: list[tuple[str, str, int, int]], unchanged: list[str]) -> None:
        """(id, text, seq, reserved bound) per running answer with new text; ids of the others
        (their heartbeat)."""
        ...

    async def reserve(self, generation_id: str, bound: int) -> None: ...

    async def finalize(
        self,
        generation_id: str,
        *,
        content: str | None,
        last_seq: int,
        status: str,
        finish_reason: str,
        usage: JSONDict | None,
        error: JSONDict | None = None,
        model: str | None = None,
        only_if: tuple[str, ...] = ACTIVE,
    ) -> bool:
        """The answer's end, if its status is still one of `only_if`: True for the winner."""
        ...

    # Scale-out (services/scaleout): per-session order across workers, and ending the
    # generations of dead workers. Unused by the embedded mode.

    async def next_runnable(self, session_id: str) -> str | None:
        """The session's oldest active generation if it is still queued; None when nothing is
        queued or one is running."""
        ...

    async def stale_running(self, before: datetime, limit: int = 100) -> list[str]: ...

    async def running_by_worker(self, limit: int = 1000) -> list[tuple[str, str, str]]:
        """(generation, session, worker id) of running generations."""
        ...

    async def stuck_sessions(self, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(session, oldest queued generation) for sessions with a generation queued since
        before `before` and none running: nobody is draining them."""
        ...

    async def end_interrupted(
        self,
        generation_id: str,
        *,
        error: JSONDict,
        seal: Seal,
        stale_before: datetime | None = None,
        owner: str | None = None,
    ) -> Interrupted | None:
        """running -> failed / interrupted, by exactly one party (still running; heartbeat
        older than `stale_before`; run by `owner`). Only the winner calls `seal`, which stops
        the old producer and returns the stream log's (content, chunk seq); that replaces the
        stored text when present, else the stored text stands."""
        ...


__all__ = ["ACTIVE", "ActiveCheck", "Branch", "GenerationRow", "GenerationStore", "Interrupted", "Job", "Turn"]
