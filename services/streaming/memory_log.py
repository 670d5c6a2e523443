"""In-process stream log for the embedded mode: a capped deque of frames per generation,
plus the content so far for snapshots. Appends never block on readers."""

import asyncio
from collections import deque

from services.streaming.frames import Frame
from services.streaming.log import AppendNowait, ReadResult, StreamLog
from services.streaming.push import Pusher


class _GenLog:
    __slots__ = ("frames", "parts", "last_seq", "last_chunk_seq", "waiters", "pushers", "drop_handle", "finished")

    def __init__(self, max_frames: int):
        self.frames: deque[Frame] | _Packed = deque(maxlen=max_frames)
        self.parts: list[str] = []
        self.last_seq = 0
        self.last_chunk_seq = 0
        self.waiters: list[asyncio.Future[bool]] = []
        self.pushers: list[Pusher] = []  # caught-up readers
        self.drop_handle: asyncio.TimerHandle | None = None
        self.finished = False


class _Packed:
    """A finished generation's frames, kept for resumes until the log expires, as two
    tuples of strings instead of a Frame per token. Frames are tuples the collector must
    track (plain tuples of strings it stops tracking): with a few thousand answers kept
    for STREAM_LOG_TTL, every full collection walked each of their tokens, and took
    0.4-0.6 s here after the 1000-stream run, stalling every stream at once."""

    __slots__ = ("first", "types", "data")

    def __init__(self, frames: deque[Frame]):
        self.first = frames[0].seq
        self.types = tuple(f.type for f in frames)
        self.data = tuple(f.data for f in frames)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> Frame:
        if i < 0:
            i += len(self.data)
        return Frame(self.first + i, self.types[i], self.data[i])


def _release(log: _GenLog) -> None:
    pushers, log.pushers = log.pushers, []
    for pusher in pushers:
        pusher.release()


def _expire(fut: "asyncio.Future[bool]") -> None:
    if not fut.done():
        fut.set_result(False)


class MemoryStreamLog(StreamLog):
    """Appends synchronously and pushes to caught-up readers; seals nothing: the one process
    that writes it is the only producer, so `seal` is the snapshot."""

    pushes = True

    def __init__(self, max_frames: int):
        self.max_frames = max_frames
        self._logs: dict[str, _GenLog] = {}

    def _get(self, generation_id: str) -> _GenLog:
        log = self._logs.get(generation_id)
        if log is None:
            log = self._logs[generation_id] = _GenLog(self.max_frames)
        return log

    async def create(self, generation_id: str) -> None:
        self._get(generation_id)

    async def append(self, generation_id: str, frame: Frame, text: str | None = None) -> None:
        self.append_nowait(generation_id, frame, text)

    def nowait_append(self) -> AppendNowait:
        return self.append_nowait

    async def append_ending(self, generation_id: str, frame: Frame, base: tuple[str, int] | None = None) -> None:
        if base is not None:
            log = self._get(generation_id)
            log.parts[:] = [base[0]] if base[0] else []
            log.last_chunk_seq = base[1]
        self.append_nowait(generation_id, frame)

    def append_nowait(self, generation_id: str, frame: Frame, text: str | None = None) -> None:
        """`append` without the coroutine: the producer's per-token call, and the coalescing
        timer's (a plain callback)."""
        log = self._logs.get(generation_id) or self._get(generation_id)
        frames = log.frames
        if isinstance(frames, _Packed):  # not expected after `done`, but never lose a frame
            frames = log.frames = deque((frames[i] for i in range(len(frames))), maxlen=self.max_frames)
        frames.append(frame)
        log.last_seq = frame.seq
        if text is not None:
            log.parts.append(text)
            log.last_chunk_seq = frame.seq
        if frame.type == "done":
            log.finished = True
            log.frames = _Packed(frames)
            if len(log.parts) > 1:
                log.parts[:] = ["".join(log.parts)]
        if log.pushers:
            # Into each caught-up reader's buffer; its task wakes once for all of this iteration's.
            kept = True
            for pusher in log.pushers:
                if not pusher.put(frame):
                    kept = False
            if not kept:
                log.pushers = [p for p in log.pushers if not p.released]
        if log.waiters:
            waiters, log.waiters = log.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)

    def attach(self, generation_id: str, after: int, pusher: Pusher) -> bool:
        """Fills `pusher`'s buffer with the frames after `after` as they are appended (its
        reader's task sends them); only a reader that has read everything so far is taken
        (False: it keeps pulling)."""
        log = self._logs.get(generation_id)
        if log is None or log.finished or log.last_seq != after:
            return False
        log.pushers.append(pusher)
        return True

    def detach(self, generation_id: str, pusher: Pusher) -> None:
        log = self._logs.get(generation_id)
        if log is not None and pusher in log.pushers:
            log.pushers.remove(pusher)

    async def read(self, generation_id: str, after: int, limit: int = 512) -> ReadResult | None:
        log = self._logs.get(generation_id)
        if log is None:
            return None
        frames = log.frames
        if not frames or after >= log.last_seq:
            return ReadResult([], finished=log.finished)
        first = frames[0].seq
        if after + 1 < first:
            return ReadResult([], gap=True)
        start = after + 1 - first  # seqs are contiguous, so the index is arithmetic
        end = min(len(frames), start + limit)
        finished = log.finished and end == len(frames)
        if start == 0 and end == len(frames) and type(frames) is deque:
            return ReadResult(list(frames), finished=finished)
        return ReadResult([frames[i] for i in range(start, end)], finished=finished)

    async def snapshot(self, generation_id: str) -> tuple[str, int] | None:
        log = self._logs.get(generation_id)
        if log is None:
            return None
        if len(log.parts) > 1:  # join once, so repeated snapshots stay cheap
            log.parts[:] = ["".join(log.parts)]
        return (log.parts[0] if log.parts else ""), log.last_chunk_seq

    async def wait(self, generation_id: str, after: int, timeout: float) -> bool:
        log = self._logs.get(generation_id)
        if log is None:
            return False
        if log.last_seq > after:
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        log.waiters.append(fut)
        # A bare timer resolving the future to False: cheaper per wake than asyncio.timeout().
        timer = loop.call_later(timeout, _expire, fut)
        try:
            return await fut
        finally:
            timer.cancel()
            if not fut.done():
                fut.cancel()
            if fut in log.waiters:
                log.waiters.remove(fut)

    async def expire(self, generation_id: str, ttl: float) -> None:
        log = self._logs.get(generation_id)
        if log is None:
            return
        if log.drop_handle:
            log.drop_handle.cancel()
        log.drop_handle = asyncio.get_running_loop().call_later(ttl, self._drop, generation_id)

    def _drop(self, generation_id: str) -> None:
        log = self._logs.pop(generation_id, None)
        if log:
            _release(log)
            for fut in log.waiters:
                if not fut.done():
                    fut.set_result(True)

    def wake_all(self) -> None:
        for log in self._logs.values():
            _release(log)
            waiters, log.waiters = log.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(True)

    async def aclose(self) -> None:
        for generation_id in list(self._logs):
            log = self._logs[generation_id]
            if log.drop_handle:
                log.drop_handle.cancel()
            self._drop(generation_id)
