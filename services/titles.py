"""Automatic chat titles. When a chat's first message is stored its title becomes the
message's first words (services/generations/store_rules.py), which is also what the offline model
keeps. After the first answer completes, the model that gave it is asked for a short title in
a separate small request: never stored as a message, at most AUTO_TITLE_MAX_TOKENS tokens and
AUTO_TITLE_TIMEOUT seconds, any failure ignored. The title is replaced only while it is still
the first-words one, in one conditional UPDATE: a title the user set, before or meanwhile,
is kept."""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import func, select, update

from config import Settings
from models.db import ChatSession, Message
from services.db import Database
from services.errors import DomainError
from services.generations.store_rules import first_words_title as first_words
from services.observability.generation import Ended
from services.providers.base import ChatRequest
from services.providers.registry import ProviderRegistry

log = logging.getLogger(__name__)
EndHook = Callable[[Ended], Awaitable[None]]
_EXCERPT = 2000  # characters of the message and of the answer shown to the model
ASK = "Give this conversation a short title of at most six words. Reply with the title only."
_QUOTES = "\"'`*#“”‘’«» "


def clean(text: str) -> str:
    """The model's reply as a title: its first line, without a `Title:` label or quotes."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    if line.lower().startswith("title:"):
        line = line[6:]
    line = " ".join(line.split()).strip(_QUOTES).rstrip(".").strip(_QUOTES)
    return line[:80]


class AutoTitler:
    def __init__(self, settings: Settings, db: Database, providers: ProviderRegistry):
        self.s = settings
        self.db = db
        self.providers = providers
        self._tasks: set[asyncio.Task[None]] = set()

    def after(self, inner: EndHook) -> EndHook:
        """The runner's end hook: `inner` first, then a title for a first answer (in the background,
        so the session's next queued answer does not wait for it)."""

        async def hook(end: Ended) -> None:
            await inner(end)
            if self.s.auto_title and end.status == "completed" and end.content.strip():
                task = asyncio.create_task(self._guarded(end.state.generation_id, end.state.model, end.content))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        return hook

    async def idle(self) -> None:
        """Waits for the titles being made (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.idle()

    async def _guarded(self, generation_id: str, model: str, answer: str) -> None:
        try:
            async with asyncio.timeout(self.s.auto_title_timeout):
                await self.make(generation_id, model, answer)
        except (DomainError, TimeoutError) as exc:
            log.info("no title for the chat of generation %s: %s", generation_id, type(exc).__name__)
        except Exception:  # a title is a nicety: never more than a log line
            log.exception("no title for the chat of generation %s", generation_id)

    async def make(self, generation_id: str, model: str, answer: str) -> str | None:
        first = await self._first_turn(generation_id)
        if first is None:
            return None
        session_id, question = first
        provider, model_id = self.providers.split(model)
        if provider.kind == "offline":  # its first-words title stands
            return None
        turns = [
            {"role": "user", "content": question[:_EXCERPT]},
            {"role": "assistant", "content": answer[:_EXCERPT]},
            {"role": "user", "content": ASK},
        ]
        request = ChatRequest(model_id, turns, temperature=0.3, max_tokens=self.s.auto_title_max_tokens)
        parts: list[str] = []
        events = provider.stream(request)
        try:
            async for event in events:
                if type(event) is str:
                    parts.append(event)
                    if len(parts) >= self.s.auto_title_max_tokens:
                        break
        finally:
            await events.aclose()
        title = clean("".join(parts))
        if not title:
            return None
        async with self.db.sessionmaker() as db:
            done = await db.execute(
                update(ChatSession)
                .where(ChatSession.id == session_id, ChatSession.title == first_words(question))
                .values(title=title)
            )
            await db.commit()
        return title if getattr(done, "rowcount", 0) == 1 else None

    async def _first_turn(self, generation_id: str) -> tuple[str, str] | None:
        """(session id, first message) if this answer is the first of a UI chat whose title is
        still its first words; None otherwise."""
        async with self.db.sessionmaker() as db:
            row: Any = (
                await db.execute(
                    select(Message.session_id, Message.pk, ChatSession.title, ChatSession.kind)
                    .join(ChatSession, ChatSession.id == Message.session_id)
                    .where(Message.id == generation_id)
                )
            ).first()
            if row is None or row.kind != "chat":
                return None
            earlier = await db.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.session_id == row.session_id, Message.role == "assistant", Message.pk < row.pk)
            )
            question = await db.scalar(
                select(Message.content).where(Message.generation_id == generation_id, Message.role == "user")
            )
        if earlier or question is None or row.title != first_words(question):
            return None
        return row.session_id, question
