"""Who is on a WebSocket, and ending the socket as soon as that stops being true.

A socket outlives the request that opened it, so its credential is held to account for its
whole life: a timer closes it with 4401 when the JWT (or the API key) expires, and every
frame is preceded by `SocketAuth.check`, which re-reads an API key from the database and the
account's state (cached for USER_POLICY_TTL), so a key revoked or an account disabled on any
replica closes its sockets before they start another generation (4401, or 4403 when
disabled). `Connections.close_user` (api/lifecycle.py) closes a user's sockets in this
process at once, as an admin's disable does."""

import asyncio
import time

from fastapi import WebSocket
from starlette.websockets import WebSocketState

from api.deps import api_keys_of
from api.principal import authenticate, refuse_duplicates
from services.api_keys import Principal
from services.container import Services
from services.errors import Unauthorized

EXPIRED = "token expired"


async def socket_principal(ws: WebSocket, services: Services, credential: str) -> Principal:
    refuse_duplicates(ws.headers.getlist("authorization"))
    return await authenticate(services, credential)


async def close_unauthorized(ws: WebSocket, reason: str) -> None:
    """Closes the socket with 4401 and `reason` (at most 120 characters, the close frame's
    room); a socket already closed, or whose peer is gone, is left as it is."""
    if ws.application_state != WebSocketState.DISCONNECTED:
        try:
            await ws.close(4401, reason[:120])
        except Exception:  # the peer is already gone
            pass


class SocketAuth:
    def __init__(self, ws: WebSocket, services: Services, principal: Principal):
        self.ws, self.services, self.principal = ws, services, principal
        self._timer: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        if principal.expires_at is not None:
            delay = max(0.0, principal.expires_at - time.time())
            self._timer = asyncio.get_running_loop().call_later(delay, self._expire)

    def _expire(self) -> None:
        # The handler may be waiting for the client's next frame: close from outside, and
        # its receive sees the disconnect.
        self._closing = asyncio.create_task(close_unauthorized(self.ws, EXPIRED))

    async def check(self) -> None:
        """Raises Unauthorized once the credential has expired or the key is revoked."""
        expires_at = self.principal.expires_at
        if expires_at is not None and time.time() >= expires_at:
            raise Unauthorized("Token expired; sign in again at POST /token.", code="token_expired")
        await api_keys_of(self.services).still_valid(self.principal)
        # An account disabled on another replica or from the CLI: this socket closes 4403.
        await self.services.usage.admit(self.principal.user_id, budgets=False)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
