"""WebSocket /ws/{session_id} (and /ws, which opens a new session first).

The handler only translates: client frames become service calls, and each generation is
followed by its own task that forwards the log's pre-encoded frames. Nothing here runs a
generation, so a dropped socket never stops one. Here: the handshake (credential, session,
connection count); the conversation that follows is api/ws_conversation.py."""

import asyncio
import json
import re

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api.errors import ws_close_code
from api.principal import websocket_token
from api.ws_auth import SocketAuth, socket_principal
from api.ws_conversation import Conversation, WsClose, utf8_size_over
from models.schemas import ULID_PATTERN, SetLLM
from services.container import Services
from services.errors import DomainError, NotFound
from services.limits import StreamLease
from services.observability import note
from services.streaming import frames
from services.users import get_user

router = APIRouter()
_ULID = re.compile(ULID_PATTERN)


@router.websocket("/ws")
async def ws_new_session(ws: WebSocket) -> None:
    await _serve(ws, None)


@router.websocket("/ws/{session_id}")
async def ws_session(ws: WebSocket, session_id: str) -> None:
    await _serve(ws, session_id)


async def _serve(ws: WebSocket, session_id: str | None) -> None:
    services: Services = ws.app.state.services
    connections = ws.app.state.connections
    s = services.settings
    user_id: str | None = None  # set once the connection is counted against its user
    lease: StreamLease | None = None  # the user's open-stream slot (services/limits/)
    try:
        token, via_subprotocol = websocket_token(ws, s.allow_query_token)
        await ws.accept(subprotocol="bearer" if via_subprotocol else None)
        if token is None:
            token = await _auth_frame(ws, s.ws_auth_timeout, s.ws_auth_frame_max_bytes)
        principal = await socket_principal(ws, services, token)
        subject = principal.user_id
        note(user_id=subject)  # for the socket's log event
        await services.usage.admit(subject, budgets=False)  # a disabled account's socket: 4403
        await services.limits.check_request(subject)
        lease = await services.limits.open_stream(subject)
        chat_id = await _open_session(services, subject, session_id)
        if not connections.add(ws, subject, s.ws_max_connections_per_user):
            raise WsClose(4429, "too many connections")
        user_id = subject
        if session_id is None:
            await ws.send_text(frames.encode({"type": "session", "session_id": chat_id}))
        await Conversation(ws, services, subject, chat_id, SocketAuth(ws, services, principal)).run()
    except WebSocketDisconnect:
        pass
    except WsClose as close:
        await _close(ws, close.code, close.reason)
    except DomainError as exc:
        await _close(ws, ws_close_code(exc), exc.detail[:120])
    finally:
        if user_id is not None:
            connections.remove(ws, user_id)
        if lease is not None:
            await lease.release()


async def _open_session(services: Services, user_id: str, session_id: str | None) -> str:
    """The id of a new session, or of the user's own; a token whose user is gone closes 4401, not 4404.
    Finding the session proves its owner exists (sessions go with their user), so the
    user is only looked up when there is no session to find."""
    if session_id is None:
        user = await get_user(services.db, user_id)
        await services.limits.check_session_create(user.id)
        async with services.db.sessionmaker() as db:
            return (await services.sessions.create(db, user.id, SetLLM())).id
    try:
        if not _ULID.match(session_id):
            raise NotFound("session not found", code="session_not_found")
        return await services.sessions.check_owned(services.db, user_id, session_id.upper())
    except NotFound:
        await get_user(services.db, user_id)  # Unauthorized if the token outlived its user
        raise


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        try:
            await ws.close(code, reason)
        except Exception:  # the peer is already gone
            pass


async def _auth_frame(ws: WebSocket, timeout: float, max_bytes: int) -> str:
    try:
        raw = await asyncio.wait_for(ws.receive_text(), timeout)
        if utf8_size_over(raw, max_bytes):
            raise WsClose(1009, "auth frame too large")
        frame = json.loads(raw)
    except TimeoutError:
        raise WsClose(4401, "no auth frame in time") from None
    except (ValueError, KeyError, RuntimeError, RecursionError):
        raise WsClose(4401, "first frame must be an auth frame") from None
    token = frame.get("token") if isinstance(frame, dict) and frame.get("type") == "auth" else None
    if not isinstance(token, str):
        raise WsClose(4401, "first frame must be an auth frame")
    return token
