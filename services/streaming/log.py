"""The stream log interface: one append-only log of frames per generation, read from any
offset by any number of readers. Implementations: memory (embedded) and Redis Streams.

Besides the core (create, append, read, snapshot, wait, expire), every log declares what it
can do beyond it, so callers ask the interface instead of probing the object:
- `nowait_append()`: the synchronous append, or None (the runner then awaits `append`);
- `pushes`: True when `attach` takes a caught-up reader and pushes frames to it
  (streaming/push.py); a log that cannot push never takes one, its readers keep pulling;
- `seals`: True when another process can end a generation and `seal` then refuses the old
  producer's later appends; in a log written by one process there is no other producer, and
  `seal` is the snapshot;
- `append_ending`: the done frame of a generation ended by someone other than its producer
  (services/scaleout/recovery.py), written past a seal, rebuilding the content if it was lost."""

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from services.streaming.frames import Frame

if TYPE_CHECKING:
    from services.streaming.push import Pusher

# generation_id, frame, text of a chunk frame (None for other frames)
AppendNowait = Callable[[str, Frame, "str | None"], None]


class StreamConflict(RuntimeError):
    """The frame's seq was already written by another party, or the log was sealed because
    another process ended the generation: the caller no longer owns it."""


@dataclass(frozen=True, slots=True)
class ReadResult:
    frames: list[Frame]
    # True when frames after the requested seq were already trimmed: the reader must
    # continue from a snapshot instead.
    gap: bool = False
    # True once the log holds the done frame: nothing will follow `frames`.
    finished: bool = False


class StreamLog(ABC):
    """`append` is called by the one producer of a generation, in seq order. Chunk frames
    carry their text in `text` so the log can serve snapshots of the content so far."""

    pushes: ClassVar[bool] = False
    seals: ClassVar[bool] = False

    @abstractmethod
    async def create(self, generation_id: str) -> None:
        """Declares a generation (queued): readers wait on it instead of falling back."""

    @abstractmethod
    async def append(self, generation_id: str, frame: Frame, text: str | None = None) -> None: ...

    def nowait_append(self) -> AppendNowait | None:
        """The log's synchronous append (no coroutine per token; a timer can call it), if it
        has one."""
        return None

    @abstractmethod
    async def append_ending(self, generation_id: str, frame: Frame, base: tuple[str, int] | None = None) -> None:
        """Writes the done `frame` of a generation its producer no longer runs, past a seal;
        `base` (content, seq of its last chunk) first resets the content, for a log that was
        lost, so readers get a snapshot of it before the done frame."""

    @abstractmethod
    async def read(self, generation_id: str, after: int, limit: int = 512) -> ReadResult | None:
        """Frames with seq > after, oldest first; None if the log holds nothing for this
        generation (never created, or expired)."""

    @abstractmethod
    async def snapshot(self, generation_id: str) -> tuple[str, int] | None:
        """(content of all chunks so far, seq of the last chunk), or None if unknown."""

    async def seal(self, generation_id: str) -> tuple[str, int] | None:
        """Refuses later appends from the generation's producer (when `seals`) and returns
        the snapshot at that instant, or None if the log is gone."""
        return await self.snapshot(generation_id)

    @abstractmethod
    async def wait(self, generation_id: str, after: int, timeout: float) -> bool:
        """Waits until a frame with seq > after exists; False on timeout."""

    @abstractmethod
    async def expire(self, generation_id: str, ttl: float) -> None:
        """Drops the generation's log after `ttl` seconds (called once it is done)."""

    def attach(self, generation_id: str, after: int, pusher: "Pusher") -> bool:
        """Fills `pusher` with the frames after `after` as they are appended, for a reader that
        has read everything so far (when `pushes`). False: this log does not push (the
        default), or the reader is behind; it keeps pulling with `read` and `wait`."""
        return False

    def detach(self, generation_id: str, pusher: "Pusher") -> None:  # noqa: B027
        """Stops filling `pusher` (a no-op when it was never attached). Not abstract: a log
        that never pushes attaches no one, so doing nothing is its whole implementation."""

    def wake_all(self) -> None:  # noqa: B027
        """Wakes every waiting reader at once (server shutdown). Not abstract: a log whose
        readers wait with a timeout (polling) has nothing to wake, so the default does nothing."""

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
