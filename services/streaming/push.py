"""Push delivery to a reader that has caught up with a generation's in-process log.

A caught-up reader that pulls costs, per token, a read of the log, a timer and a wake of its
task. A pusher instead is a buffer the log fills as it appends: the first frame of a loop
iteration wakes the reader's task once, and that task sends everything buffered since in one
batch, so a burst (a producer reading a backlog) goes out in one write. The send runs in the
reader's own task, with its context (current task, contextvars, `asyncio.timeout`) intact.
A frame that arrives while the reader's send is waiting (flow control: a slow reader)
releases the pusher: the reader finishes that send and goes back to pulling from the log, so
a slow reader never slows the producer or the others and its backlog is bounded by the log's."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from services.streaming.frames import Frame

Send = Callable[[Sequence[Frame]], Awaitable[None]]


class Pusher:
    __slots__ = (
        "send",
        "seq",
        "buffer",
        "waiter",
        "sending",
        "released",
        "finished",
        "pushed",
        "quiet",
        "ticked",
        "interval",
        "timer",
        "only_done",
    )

    def __init__(self, send: Send, only_done: bool = False):
        self.send = send
        self.seq = 0  # the last frame handed to `send`
        self.buffer: list[Frame] = []  # appended since the reader's task last took them
        self.waiter: asyncio.Future[None] | None = None  # the reader's task, idle
        self.sending = False  # the reader's task is inside `send`
        self.released = False
        self.finished = False  # the done frame went out
        self.pushed = 0  # batches sent, for the quiet timer
        self.quiet = False
        self.ticked = 0
        self.interval = 0.0
        self.timer: asyncio.TimerHandle | None = None
        # Wake only for the done frame: a reader that needs nothing else (waiting for the end).
        self.only_done = only_done

    def rearm(self, after: int) -> "Pusher":
        """Ready to be attached again, for a reader that has read up to `after`."""
        self.seq, self.released, self.quiet = after, False, False
        return self

    def put(self, frame: Frame) -> bool:
        """The log's call for each frame appended while attached; False lets go of this pusher."""
        if self.sending:  # the reader's send is waiting: it goes back to pulling from the log
            self.release()
            return False
        if self.only_done and frame.type != "done":
            self.seq = frame.seq
            return True
        self.buffer.append(frame)
        waiter = self.waiter
        if waiter is not None:  # one wake per loop iteration: later frames join the buffer
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return True

    def release(self) -> None:
        """Hands the reader back to pulling (also the log's call when it drops the generation)."""
        self.released = True
        self.buffer = []
        self._wake()

    def _wake(self) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _tick(self) -> None:
        # One timer per quiet interval, not one per wake: silence is noticed between one and
        # two intervals after the last batch, as a reader re-arming its wait each interval.
        if self.pushed != self.ticked:
            self.ticked = self.pushed
            self.timer = asyncio.get_running_loop().call_later(self.interval, self._tick)
            return
        self.quiet = True
        self._wake()

    async def deliver(self, quiet_interval: float) -> bool:
        """The reader's task, while attached: sends each buffered batch until released (False),
        the done frame went out (False, `finished`), or `quiet_interval` passed with nothing
        sent (True). What `send` raises propagates here, in the reader's task."""
        loop = asyncio.get_running_loop()
        self.interval, self.ticked = quiet_interval, self.pushed
        self.timer = loop.call_later(quiet_interval, self._tick)
        try:
            while True:
                batch = self.buffer
                if not batch:
                    if self.released:
                        return False
                    if self.quiet:
                        return True
                    waiter = self.waiter = loop.create_future()
                    await waiter
                    continue
                self.buffer = []
                self.seq = batch[-1].seq
                self.pushed += 1
                self.sending = True
                await self.send(batch)
                self.sending = False
                if batch[-1].type == "done":
                    self.finished = True
                    return False
        finally:
            self.sending = False
            self.waiter = None
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
