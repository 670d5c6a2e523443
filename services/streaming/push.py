"""Push delivery to a reader that has caught up with a generation's in-process log.

A caught-up reader that waits for the next frame costs, per token, a future, a timer, a
wake of its task and a read of the log. A pusher instead has the log run the reader's
send itself, once per loop iteration with the frames appended in it, for as long as that
send completes without suspending, which an ASGI server's send does while the socket's
buffer has room. The first send that would suspend (flow control: a slow reader) or
fails releases the pusher: the reader's own task finishes that send and goes back to
pulling from the log, so a slow reader still never slows the producer or the others."""

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from services.streaming.frames import Frame

Send = Callable[[Sequence[Frame]], Awaitable[None]]


def _resolve(fut: asyncio.Future) -> None:
    if not fut.done():
        fut.set_result(None)


class Pusher:
    __slots__ = ("send", "seq", "pushed", "released", "finished", "error", "pending", "woken")

    def __init__(self, send: Send):
        self.send = send
        self.seq = 0  # the last frame handed to `send`
        self.pushed = 0
        self.released = False
        self.finished = False  # the done frame went out
        self.error: BaseException | None = None  # what a pushed send raised
        self.pending: tuple | None = None  # (send coroutine, what it yielded) when it suspended
        self.woken: asyncio.Future | None = None

    def rearm(self, after: int) -> "Pusher":
        """Ready to be attached again, for a reader that has read up to `after`."""
        self.seq, self.released, self.woken = after, False, None
        return self

    def push(self, batch: Sequence[Frame]) -> bool:
        """The log's call with the frames appended since its last one; False lets go of this
        pusher. Frames up to `seq` are skipped: a reader attached while a batch was pending
        had read them already."""
        if batch[0].seq <= self.seq:
            batch = [f for f in batch if f.seq > self.seq]
            if not batch:
                return True
        self.seq = batch[-1].seq
        self.pushed += 1
        coro = self.send(batch)
        try:
            yielded = coro.send(None)
        except StopIteration:
            if batch[-1].type != "done":
                return True
            self.finished = True
        except (Exception, asyncio.CancelledError) as exc:  # the reader's failure, never the producer's
            self.error = exc
        else:
            self.pending = (coro, yielded)
        self.release()
        return False

    def release(self) -> None:
        """Hands the reader back to its task (also the log's call when it drops the generation)."""
        self.released = True
        if self.woken is not None:
            _resolve(self.woken)

    async def wait(self, quiet_interval: float) -> bool:
        """Until released (False), or until `quiet_interval` passes with nothing pushed (True)."""
        loop = asyncio.get_running_loop()
        while not self.released:
            seen = self.pushed
            self.woken = loop.create_future()
            timer = loop.call_later(quiet_interval, _resolve, self.woken)
            try:
                await self.woken
            finally:
                timer.cancel()
            if not self.released and self.pushed == seen:
                return True
        return False

    async def settle(self) -> None:
        """Finishes the send that suspended in `push`, in the reader's task, then raises what a
        pushed send raised."""
        if self.pending is not None:
            coro, yielded = self.pending
            self.pending = None
            await _Rest(coro, yielded)
        if self.error is not None:
            error, self.error = self.error, None
            raise error

    def discard(self) -> None:
        """The reader is going away with a send still suspended: close it."""
        if self.pending is not None:
            self.pending[0].close()
            self.pending = None


class _Rest:
    """The rest of a coroutine that was stepped by hand and suspended: what it yielded goes
    to the awaiting task exactly as a plain `await` would have passed it on."""
    __slots__ = ("coro", "yielded")

    def __init__(self, coro, yielded):
        self.coro, self.yielded = coro, yielded

    def __await__(self):
        coro, yielded = self.coro, self.yielded
        while True:
            try:
                yield yielded
            except BaseException as exc:  # thrown in by the task, e.g. its cancellation
                try:
                    yielded = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = coro.send(None)
            except StopIteration as stop:
                return stop.value
