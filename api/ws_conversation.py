"""One authenticated WebSocket's conversation (api/ws.py opens it): client frames in,
checked for size, rate and the credential's validity, then turned into service calls; each
generation followed by its own task forwarding the log's pre-encoded frames."""

import asyncio
import json
import re
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, TypeGuard

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from api import ws_tree
from api.ws_auth import SocketAuth
from models.schemas import INT64_MAX, ULID_PATTERN, is_unicode_text
from services.container import Services
from services.errors import DomainError, InvalidInput
from services.streaming import frames
from services.streaming.frames import Frame

_ULID = re.compile(ULID_PATTERN)


class WsClose(Exception):
    """Ends the socket with this close code and reason."""

    def __init__(self, code: int, reason: str = ""):
        self.code, self.reason = code, reason


def utf8_size_over(text: str, limit: int) -> bool:
    """Whether `text` is over `limit` bytes in UTF-8 (as it came on the wire), encoding it
    only when its length alone cannot tell."""
    if len(text) > limit:
        return True
    return len(text) * 4 > limit and len(text.encode()) > limit


class Conversation:
    def __init__(self, ws: WebSocket, services: Services, user_id: str, chat_id: str, auth: SocketAuth):
        self.ws, self.services, self.user_id, self.chat_id, self.auth = ws, services, user_id, chat_id, auth
        self.s = services.settings
        self.followers: dict[str, asyncio.Task[None]] = {}
        self.recent: deque[float] | None = None  # made at the first frame: an idle socket keeps none

    async def run(self) -> None:
        try:
            while True:
                message = await self.ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                if text is None:
                    raise WsClose(1003, "binary frames are not supported")
                if utf8_size_over(text, self.s.ws_max_frame_bytes):
                    raise WsClose(1009, "frame too large")
                self._rate_limit()
                await self.auth.check()  # Unauthorized ends the socket with 4401
                await self._handle(text)
        finally:
            self.auth.stop()
            for task in self.followers.values():
                task.cancel()

    def _rate_limit(self) -> None:
        now = time.monotonic()
        recent = self.recent
        if recent is None:
            recent = self.recent = deque()
        while recent and now - recent[0] > 60:
            recent.popleft()
        recent.append(now)
        if len(recent) > self.s.ws_max_messages_per_minute:
            raise WsClose(4429, "too many messages")

    async def _handle(self, text: str) -> None:
        if not text.lstrip().startswith("{"):
            try:
                return await self._message(text, None)
            except DomainError as exc:
                return await self._error(exc.code, exc.detail)
        try:
            frame: dict[str, Any] = json.loads(text)  # a JSON object: the text begins with {
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser goes
            return await self._error("invalid_json", "frame is not valid JSON")
        kind = frame.get("type")
        try:
            if kind == "message":
                content, client_msg_id = frame.get("content"), frame.get("client_msg_id")
                if not isinstance(content, str):
                    raise InvalidInput("message frame needs a string 'content'", code="missing_field")
                if client_msg_id is not None and (
                    not isinstance(client_msg_id, str)
                    or not 0 < len(client_msg_id) <= 128
                    or not is_unicode_text(client_msg_id)
                ):
                    raise InvalidInput("client_msg_id must be a string of 1-128 characters", code="invalid_field")
                if not is_unicode_text(content):
                    raise InvalidInput("content must be valid Unicode text (no lone surrogates)", code="invalid_field")
                await self._message(content, client_msg_id)
            elif kind == "resume":
                generation_id, after = frame.get("generation_id"), frame.get("after_seq", 0)
                if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= INT64_MAX:
                    raise InvalidInput("after_seq must be an integer from 0 to 2**63-1", code="invalid_field")
                gen = await self.services.generations.get(_generation_id(generation_id), self.user_id)
                self._follow(gen.id, after)
            elif kind == "cancel":
                await self._cancel(frame.get("generation_id"))
            elif kind == "ping":
                await self.ws.send_text('{"type":"pong"}')
            elif kind in ws_tree.FRAME_TYPES:
                await self._tree(kind, frame)
            elif kind == "auth":
                raise InvalidInput("already authenticated", code="already_authenticated")
            else:
                raise InvalidInput(
                    f"unknown frame type {kind!r}; expected message, cancel, resume, ping, "
                    "regenerate, edit, continue or switch",
                    code="unknown_type" if kind is not None else "missing_field",
                )
        except DomainError as exc:
            gen_id, msg_id = frame.get("generation_id"), frame.get("client_msg_id")
            # Echoed only when sendable: a lone surrogate cannot be encoded into a text frame.
            await self._error(
                exc.code, exc.detail, gen_id if _echoable(gen_id) else None, msg_id if _echoable(msg_id) else None
            )

    async def _message(self, content: str, client_msg_id: str | None) -> None:
        self.services.sessions.check_message(content)  # the same rule as POST /chat
        await self.services.usage.admit(self.user_id)  # budgets; a disabled account (other replicas)
        check = await self.services.limits.generation_start_check(self.user_id, self.chat_id)
        # By id, not with the session loaded at connect: the model is read in the same
        # transaction (with the limits' count), so a PATCH made while the socket is open applies.
        accepted = await self.services.generations.submit_owned(
            self.user_id, self.chat_id, content, client_msg_id, check
        )
        await self.ws.send_text(accepted.frame())
        if accepted.generation_id not in self.followers:
            self._follow(accepted.generation_id, 0)

    async def _tree(self, kind: str, frame: dict[str, Any]) -> None:
        reply, generation_id = await ws_tree.handle(self.services, self.user_id, self.chat_id, kind, frame)
        await self.ws.send_text(reply)
        if generation_id is not None and generation_id not in self.followers:
            self._follow(generation_id, 0)

    async def _cancel(self, generation_id: object) -> None:
        if generation_id is None:
            active = await self.services.generations.active_in_session(self.chat_id)
            if not active:
                raise InvalidInput("nothing is running in this session", code="nothing_to_cancel")
            generation_id = active[0]
        gen_id = _generation_id(generation_id)
        await self.services.generations.get(gen_id, self.user_id)  # 404 before going async
        task = asyncio.create_task(self.services.generations.cancel(gen_id, self.user_id))
        task.add_done_callback(lambda t: t.cancelled() or t.exception())

    def _follow(self, generation_id: str, after: int) -> None:
        previous = self.followers.pop(generation_id, None)
        if previous:
            previous.cancel()  # the client restates where it is: follow from there
        task = asyncio.create_task(self._forward(generation_id, after))
        self.followers[generation_id] = task
        task.add_done_callback(lambda t: self.followers.get(generation_id) is t and self.followers.pop(generation_id))

    async def _forward(self, generation_id: str, after: int) -> None:
        send_text = self.ws.send_text

        async def send(batch: Sequence[Frame]) -> None:  # pulled or pushed batches alike: see streaming/push.py
            for frame in batch:
                await send_text(frame.data)

        try:
            generations = self.services.generations
            async with generations.readers.reading(generation_id):
                await generations.relay(generation_id, after, send)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # socket gone: the generation goes on and is stored

    async def _error(
        self, code: str, message: str, generation_id: str | None = None, client_msg_id: str | None = None
    ) -> None:
        await self.ws.send_text(frames.error(code, message, generation_id, client_msg_id))


def _echoable(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and len(value) <= 128 and is_unicode_text(value)


def _generation_id(value: object) -> str:
    if not isinstance(value, str) or not _ULID.match(value):
        raise InvalidInput("generation_id must be a ULID", code="invalid_id")
    return value.upper()
