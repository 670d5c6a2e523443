"""Open WebSockets and graceful shutdown.

uvicorn closes WebSockets with 1012 and waits for streaming responses to end before the
app's lifespan shutdown runs. To end in-flight generations first and say 1001 "going away"
as PROTOCOL.md asks, the SIGTERM/SIGINT handler is chained: ours runs the graceful part,
then hands over to uvicorn's."""

import asyncio
import logging
import signal
from collections import Counter

from starlette.websockets import WebSocket

from services.container import Services

log = logging.getLogger(__name__)
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Connections:
    def __init__(self):
        self.sockets: dict[WebSocket, str] = {}  # open socket -> its user's id
        self.per_user: Counter[str] = Counter()

    def add(self, ws: WebSocket, user_id: str, limit: int) -> bool:
        if self.per_user[user_id] >= limit:
            return False
        self.per_user[user_id] += 1
        self.sockets[ws] = user_id
        return True

    def remove(self, ws: WebSocket, user_id: str) -> None:
        if ws in self.sockets:
            del self.sockets[ws]
            self.per_user[user_id] -= 1
            if self.per_user[user_id] <= 0:
                del self.per_user[user_id]

    async def close_user(self, user_id: str, reason: str, code: int = 4401) -> int:
        """Closes this process's sockets of one user (4401, or 4403 when an admin disabled the
        account); returns how many. Other replicas' sockets are refused at their next frame."""
        mine = [ws for ws, owner in self.sockets.items() if owner == user_id]
        await self._close(mine, code, reason)
        return len(mine)

    async def close_all(self, code: int, reason: str) -> None:
        await self._close(list(self.sockets), code, reason)

    async def _close(self, sockets: list[WebSocket], code: int, reason: str) -> None:
        for ws in sockets:
            try:
                await ws.close(code, reason)
            except Exception:  # already gone: nothing to tell it
                pass


async def graceful_shutdown(services: Services, connections: Connections) -> None:
    """Ends running generations as interrupted (stored, done frame sent), lets readers
    deliver what they have, then closes sockets with 1001."""
    await services.dispatch.shutdown()
    await asyncio.sleep(0.2)  # followers forward the done frames just appended
    services.generations.close()
    await connections.close_all(1001, "server going away")


def chain_signal_handlers(services: Services, connections: Connections) -> None:
    loop = asyncio.get_running_loop()
    started = []
    for sig in SIGNALS:
        previous = signal.getsignal(sig)
        if not callable(previous) or getattr(getattr(previous, "__self__", None), "should_exit", None) is None:
            continue  # not under uvicorn (tests, other servers): leave signals alone

        def handler(signum, frame, previous=previous):
            async def run():
                try:
                    await asyncio.wait_for(graceful_shutdown(services, connections), timeout=15)
                except Exception:
                    log.exception("graceful shutdown did not complete")
                previous(signum, frame)
            if started:
                previous(signum, frame)  # a second signal: stop now
            else:
                started.append(signum)
                loop.call_soon_threadsafe(lambda: asyncio.ensure_future(run()))

        signal.signal(sig, handler)
