"""Open WebSockets and graceful shutdown.

uvicorn closes WebSockets with 1012 and waits for streaming responses to end before the
app's lifespan shutdown runs. To end in-flight generations first, deliver their done
frames and say 1001 "going away" as docs/protocol.md asks, the app hands `drain` to the
server in its lifespan state (under DRAIN): api/serving.py's `DrainingServer` awaits it
when a signal asks it to stop, before uvicorn's own shutdown begins."""

import logging
from collections import Counter

from starlette.websockets import WebSocket

from services.container import Services
from services.generations.readers import delivered

log = logging.getLogger(__name__)
DRAIN = "drain"  # the lifespan state key of the app's graceful-stop coroutine


class Connections:
    def __init__(self) -> None:
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
    """Ends running generations as interrupted (stored, done frame appended), waits until
    the open streams have written those done frames, then stops the other readers and
    closes sockets with 1001."""
    await services.dispatch.shutdown()
    generations = services.generations
    if not await delivered(generations.readers, services.store, services.settings.shutdown_drain_timeout):
        log.warning("graceful stop: some streams had not delivered their done frames in time")
    generations.close()
    await connections.close_all(1001, "server going away")
