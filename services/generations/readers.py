"""Which generations this process's transports are relaying right now, so that a graceful
stop can wait for the done frames it just caused to reach their clients.

A transport (a WebSocket follower, an SSE body) holds `Readers.reading(generation_id)`
while it relays; leaving it means the done frame was written, the client went away, or
the server stopped following. `delivered` waits for that on the generations that have
ended, by a condition the leaving readers set, never by a guess of how long it takes."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from services.errors import NotFound
from services.generations.store_protocol import GenerationStore
from services.streaming.frames import TERMINAL


class Readers:
    def __init__(self) -> None:
        self._open: Counter[str] = Counter()
        self._left = asyncio.Event()  # set whenever a reader leaves

    @asynccontextmanager
    async def reading(self, generation_id: str) -> AsyncIterator[None]:
        self._open[generation_id] += 1
        try:
            yield
        finally:
            self._open[generation_id] -= 1
            if self._open[generation_id] <= 0:
                del self._open[generation_id]
            self._left.set()

    def following(self) -> set[str]:
        return set(self._open)

    async def until_none_of(self, generation_ids: Iterable[str]) -> None:
        """Returns once no reader follows any of these generations."""
        waiting = set(generation_ids)
        while waiting & self._open.keys():
            self._left.clear()
            await self._left.wait()


async def delivered(readers: Readers, store: GenerationStore, timeout: float) -> bool:
    """Waits (at most `timeout` seconds) until the readers of every finished generation
    have sent its done frame; readers of generations still running elsewhere (a worker)
    are not waited for. False if the time ran out."""
    ended = []
    for generation_id in readers.following():
        try:
            row = await store.get(generation_id)
        except NotFound:
            continue
        if row.status in TERMINAL:
            ended.append(generation_id)
    try:
        await asyncio.wait_for(readers.until_none_of(ended), timeout)
    except TimeoutError:
        return False
    return True
