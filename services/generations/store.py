"""Database side of generations. Every state change is a conditional UPDATE on status,
so a cancel racing a start, or two workers racing one job, have exactly one winner."""

from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.db import ChatSession, Message, new_id, utcnow
from services.errors import NotFound, RateLimited
from services.providers.base import ChatRequest

ACTIVE = ("queued", "running")


@dataclass
class Turn:
    generation: Message
    created: bool  # False when client_msg_id matched an earlier send


@dataclass
class Job:
    generation_id: str
    model: str
    fallback_models: list[str]
    request: ChatRequest


class GenerationStore:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], max_history: int,
                 max_queued: int):
        self.sessionmaker = sessionmaker
        self.max_history = max_history
        self.max_queued = max_queued

    async def create_turn(self, chat: ChatSession, text: str, client_msg_id: str | None) -> Turn:
        async with self.sessionmaker() as db:
            if client_msg_id is not None:
                existing = await self._by_client_msg(db, chat.id, client_msg_id)
                if existing:
                    return Turn(existing, created=False)
            active = await db.scalar(select(func.count()).where(
                Message.session_id == chat.id, Message.role == "assistant", Message.status.in_(ACTIVE)))
            if active >= self.max_queued:
                raise RateLimited(
                    f"This session already has {active} answers queued or running; wait for "
                    "them or cancel one.", code="queue_full")
            generation_id = new_id()
            user = Message(session_id=chat.id, role="user", content=text, status="completed",
                           client_msg_id=client_msg_id, generation_id=generation_id)
            answer = Message(id=generation_id, session_id=chat.id, role="assistant", content="",
                             status="queued", model=chat.model_name, last_seq=0,
                             generation_id=generation_id)
            db.add(user)
            await db.flush()  # the user message's pk comes first: history order
            db.add(answer)
            if not chat.title:
                await db.execute(update(ChatSession).where(ChatSession.id == chat.id)
                                 .values(title=_title(text)))
            try:
                await db.commit()
            except IntegrityError:  # the same client_msg_id sent twice at once
                await db.rollback()
                existing = await self._by_client_msg(db, chat.id, client_msg_id)
                if existing is None:
                    raise
                return Turn(existing, created=False)
            return Turn(answer, created=True)

    async def _by_client_msg(self, db: AsyncSession, session_id: str, client_msg_id: str):
        user = await db.scalar(select(Message).where(
            Message.session_id == session_id, Message.client_msg_id == client_msg_id))
        if user is None:
            return None
        return await db.scalar(select(Message).where(Message.id == user.generation_id))

    async def position(self, generation: Message) -> int:
        async with self.sessionmaker() as db:
            return await db.scalar(select(func.count()).where(
                Message.session_id == generation.session_id, Message.role == "assistant",
                Message.status.in_(ACTIVE), Message.pk < generation.pk))

    async def get(self, generation_id: str, user_id: str | None = None) -> Message:
        async with self.sessionmaker() as db:
            query = select(Message).where(Message.id == generation_id, Message.role == "assistant")
            if user_id is not None:
                query = query.join(ChatSession, ChatSession.id == Message.session_id).where(
                    ChatSession.user_id == user_id)
            row = await db.scalar(query)
        if row is None:
            raise NotFound(f"generation {generation_id} not found", code="generation_not_found")
        return row

    async def latest(self, session_id: str) -> Message | None:
        async with self.sessionmaker() as db:
            return await db.scalar(select(Message).where(
                Message.session_id == session_id, Message.role == "assistant")
                .order_by(Message.pk.desc()).limit(1))

    async def next_queued(self, session_id: str) -> str | None:
        async with self.sessionmaker() as db:
            return await db.scalar(select(Message.id).where(
                Message.session_id == session_id, Message.role == "assistant",
                Message.status == "queued").order_by(Message.pk).limit(1))

    async def claim(self, generation_id: str, worker_id: str) -> Job | None:
        """queued -> running, then the request with the history as it stands now."""
        async with self.sessionmaker() as db:
            now = utcnow()
            result = await db.execute(update(Message).where(
                Message.id == generation_id, Message.status == "queued",
            ).values(status="running", started_at=now, heartbeat_at=now, worker_id=worker_id))
            await db.commit()
            if result.rowcount != 1:
                return None
            answer = await db.scalar(select(Message).where(Message.id == generation_id))
            chat = await db.get(ChatSession, answer.session_id)
            history = (await db.scalars(select(Message).where(
                Message.session_id == answer.session_id, Message.pk < answer.pk,
                Message.content != "").order_by(Message.pk.desc()).limit(self.max_history))).all()
        messages = [{"role": "system", "content": chat.system_prompt}] if chat.system_prompt else []
        messages += [{"role": m.role, "content": m.content} for m in reversed(history)]
        request = ChatRequest(model=answer.model or chat.model_name, messages=messages,
                              temperature=chat.temperature, max_tokens=chat.max_tokens, top_p=chat.top_p)
        return Job(generation_id, request.model, list(chat.fallback_models or []), request)

    async def flush(self, generation_id: str, content: str, last_seq: int) -> None:
        async with self.sessionmaker() as db:
            await db.execute(update(Message).where(
                Message.id == generation_id, Message.status == "running",
            ).values(content=content, last_seq=last_seq, heartbeat_at=utcnow()))
            await db.commit()

    async def finalize(self, generation_id: str, *, content: str | None, last_seq: int, status: str,
                       finish_reason: str, usage: dict | None, error: dict | None = None,
                       model: str | None = None, only_if: tuple[str, ...] = ACTIVE) -> bool:
        values = dict(status=status, finish_reason=finish_reason, last_seq=last_seq, usage=usage,
                      error=error, finished_at=utcnow())
        if content is not None:
            values["content"] = content
        if model is not None:
            values["model"] = model
        async with self.sessionmaker() as db:
            result = await db.execute(update(Message).where(
                Message.id == generation_id, Message.status.in_(only_if)).values(**values))
            await db.commit()
            return result.rowcount == 1

    async def active_in_session(self, session_id: str) -> list[str]:
        async with self.sessionmaker() as db:
            return list((await db.scalars(select(Message.id).where(
                Message.session_id == session_id, Message.role == "assistant",
                Message.status.in_(ACTIVE)).order_by(Message.pk))).all())


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")
