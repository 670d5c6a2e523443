"""The stream log interface: one append-only log of frames per generation, read from any
offset by any number of readers. Implementations: memory (embedded) and Redis Streams.
A log may also push to readers that have caught up (`attach`, streaming/push.py); the memory
log does, the Redis log keeps its readers pulling."""

from abc import ABC, abstractmethod
from dataclasses import dataclass

from services.streaming.frames import Frame
from services.streaming.push import Pusher


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

    @abstractmethod
    async def create(self, generation_id: str) -> None:
        """Declares a generation (queued): readers wait on it instead of falling back."""

    @abstractmethod
    async def append(self, generation_id: str, frame: Frame, text: str | None = None) -> None: ...

    @abstractmethod
    async def read(self, generation_id: str, after: int, limit: int = 512) -> ReadResult | None:
        """Frames with seq > after, oldest first; None if the log holds nothing for this
        generation (never created, or expired)."""

    @abstractmethod
    async def snapshot(self, generation_id: str) -> tuple[str, int] | None:
        """(content of all chunks so far, seq of the last chunk), or None if unknown."""

    @abstractmethod
    async def wait(self, generation_id: str, after: int, timeout: float) -> bool:
        """Waits until a frame with seq > after exists; False on timeout."""

    @abstractmethod
    async def expire(self, generation_id: str, ttl: float) -> None:
        """Drops the generation's log after `ttl` seconds (called once it is done)."""

    def attach(self, generation_id: str, after: int, pusher: Pusher) -> bool:
        """Fills `pusher` with the frames after `after` as they are appended, for a reader that
        has read everything so far. False: this log does not push (the default), or the reader
        is behind; it keeps pulling with `read` and `wait`."""
        return False

    def detach(self, generation_id: str, pusher: Pusher) -> None:
        """Stops filling `pusher` (a no-op when it was never attached)."""

    def wake_all(self) -> None:
        """Wakes every waiting reader at once (server shutdown)."""

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
