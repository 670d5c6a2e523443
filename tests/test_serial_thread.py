"""services/serial_thread.py: the SQLite thread's calls run in order on one thread, deliver
results and errors to the caller's loop, and survive a caller that gave up."""

import asyncio
import threading

import pytest

from services.serial_thread import SerialThread


async def test_calls_run_in_submission_order_on_one_thread():
    worker = SerialThread("test-serial")
    seen: list[tuple[int, int]] = []
    futures = [worker.call(lambda i=i: seen.append((i, threading.get_ident())) or i * i) for i in range(50)]
    assert await asyncio.gather(*futures) == [i * i for i in range(50)]
    assert [i for i, _ in seen] == list(range(50))
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()
    worker.stop()


async def test_an_error_reaches_the_caller_and_the_thread_goes_on():
    worker = SerialThread("test-serial")

    def boom():
        raise ValueError("bad statement")

    with pytest.raises(ValueError, match="bad statement"):
        await worker.call(boom)
    assert await worker.call(lambda a, b: a + b, 2, 3) == 5
    worker.stop()


async def test_a_cancelled_caller_does_not_break_the_next_call():
    worker = SerialThread("test-serial")
    release = threading.Event()
    slow = asyncio.ensure_future(worker.call(release.wait, 5))
    await asyncio.sleep(0.01)
    slow.cancel()
    release.set()  # finishes after its caller left: the result is dropped, not raised
    assert await asyncio.wait_for(worker.call(lambda: "next"), 2) == "next"
    worker.stop()


async def test_stop_lets_queued_calls_finish_and_a_later_call_starts_a_new_thread():
    worker = SerialThread("test-serial")
    first = worker.call(threading.current_thread)
    worker.stop()
    one = await first
    assert await worker.call(threading.current_thread) is not one
    worker.stop()
