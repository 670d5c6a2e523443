"""What the Redis stream log's watcher knows of one watched generation: its readers here,
the highest seq notified, and a short tail of the frames the notifications carried, so
readers woken together are served from memory instead of each reading the stream."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from itertools import islice

from services.streaming.frames import Frame
from services.streaming.log import ReadResult


class Watch:
    """Readers of one generation in this process, and what its subscription knows."""

    __slots__ = ("channel", "ready", "latest", "exists", "waiters", "last_used", "tail")

    def __init__(self, channel: bytes, ready: asyncio.Future[None], tail_frames: int):
        self.channel = channel
        self.ready = ready  # set once subscribed and checked
        self.latest = 0  # highest seq known written
        self.exists = True
        self.waiters: list[asyncio.Future[None]] = []
        self.last_used = time.monotonic()
        self.tail: deque[Frame] = deque(maxlen=tail_frames)  # contiguous seqs, from notifications

    def take(self, first: int, frames: list[Frame]) -> None:
        tail = self.tail
        for frame in frames:
            if tail and frame.seq != tail[-1].seq + 1:
                if frame.seq <= tail[-1].seq:
                    continue  # already have it
                tail.clear()  # a notification was missed: start again here
            tail.append(frame)
        last = first + len(frames) - 1
        self.latest = max(self.latest, last)

    def cached(self, after: int, limit: int) -> ReadResult | None:
        """The read answered from the tail, or None when Redis must be asked."""
        tail = self.tail
        if not tail:
            return None
        first, last = tail[0].seq, tail[-1].seq
        if first <= after + 1 <= last:  # woken by a notification: it brought them
            start = after + 1 - first
            out = list(islice(tail, start, start + limit))
            return ReadResult(out, finished=out[-1].type == "done")
        if after >= last >= self.latest and self.ready.done():
            # Caught up with every frame notified on a live subscription: nothing newer
            # exists (a later write would have been notified; the listener re-checks
            # the last seqs in Redis every few seconds in case one was missed).
            return ReadResult([], finished=tail[-1].type == "done")
        return None

    def wake(self) -> None:
        if self.waiters:
            waiters, self.waiters = self.waiters, []
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)


def parse_note(data: bytes) -> tuple[int, list[Frame]]:
    """A notification: "<first seq>\n<type>\t<json>\n..." (JSON text has no raw newline)."""
    lines = data.decode().split("\n")
    first = int(lines[0])
    out = []
    for i, line in enumerate(lines[1:]):
        kind, _, body = line.partition("\t")
        out.append(Frame(first + i, kind, body))
    return first, out
