"""One thread that runs blocking calls for the event loop, in submission order: the thread
of the embedded mode's SQLite connection.

`loop.run_in_executor` with a one-thread ThreadPoolExecutor costs more CPU per call than this
(`python -m bench.thread_hop`; the figures are in bench/README.md): the executor's idle
semaphore and shutdown locks, a concurrent Future with its condition, and the chained asyncio
future. A message makes four or five of these calls, two of them before its first token."""

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
# (the caller's future, fn, args): one call for the thread; None stops it. The future's
# result is fn's, whatever it is: the typed side is SerialThread.call.
_Job = tuple["asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]
_Done = Callable[["asyncio.Future[Any]", Any], None]


def _succeed(fut: "asyncio.Future[Any]", result: Any) -> None:
    if not fut.done():  # the caller may have been cancelled meanwhile
        fut.set_result(result)


def _fail(fut: "asyncio.Future[Any]", exc: BaseException) -> None:
    if not fut.done():
        fut.set_exception(exc)


class SerialThread:
    def __init__(self, name: str):
        self.name = name
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def call(self, fn: Callable[..., T], *args: Any) -> "asyncio.Future[T]":
        """`fn(*args)` on the thread; the future resolves on the calling loop."""
        if self._thread is None:
            self._start()
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fut, fn, args))
        return fut

    def stop(self) -> None:
        """Ends the thread once the calls already queued have run; a later call starts a new one."""
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread = None

    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                # A daemon: a process exiting without stop() must not hang on an idle thread.
                self._thread = threading.Thread(target=self._work, args=(self._queue,), name=self.name, daemon=True)
                self._thread.start()

    @staticmethod
    def _work(jobs: "queue.SimpleQueue[_Job | None]") -> None:
        while (job := jobs.get()) is not None:
            fut, fn, args = job
            done: _Done
            value: Any
            try:
                done, value = _succeed, fn(*args)
            except BaseException as exc:  # delivered to the caller, as an executor would
                done, value = _fail, exc
            try:
                fut.get_loop().call_soon_threadsafe(done, fut, value)
            except RuntimeError:  # the caller's loop is closed: nobody is waiting
                pass
            del job, fut, fn, args, value  # hold nothing of a finished call while idle
