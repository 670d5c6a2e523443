"""Database side of generations. Every state change is a conditional UPDATE on status,
so a cancel racing a start, or two workers racing one job, have exactly one winner."""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.db import ChatSession, Message, new_id, utcnow
from services.errors import NotFound, RateLimited
from services.providers.base import ChatRequest, estimate_tokens

ACTIVE = ("queued", "running")


@dataclass
class Turn:
    generation: Message
    created: bool  # False when client_msg_id matched an earlier send


@dataclass
class Interrupted:
    """What `end_interrupted` stored: the text up to chunk `seq`; the done frame is seq + 1."""
    session_id: str
    content: str
    seq: int
    usage: dict
    model: str | None


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
            # Conditional: the caller's `chat` may be stale (a socket loads it once), and a
            # title the user chose must never be replaced.
            await db.execute(update(ChatSession).where(ChatSession.id == chat.id, ChatSession.title == "")
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

    async def flush(self, generation_id: str, content: str | None, last_seq: int) -> None:
        values = {"heartbeat_at": utcnow()}
        if content is not None:
            values.update(content=content, last_seq=last_seq)
        async with self.sessionmaker() as db:
            await db.execute(update(Message).where(
                Message.id == generation_id, Message.status == "running").values(**values))
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

    # Scale-out (services/scaleout): per-session order across workers, and ending the
    # generations of dead workers. Unused by the embedded mode.

    async def next_runnable(self, session_id: str) -> str | None:
        """The session's oldest active generation if it is still queued; None when nothing is
        queued or one is running. Draining with this keeps a session to one generation at a
        time, in order, whichever worker asks."""
        async with self.sessionmaker() as db:
            row = (await db.execute(select(Message.id, Message.status).where(
                Message.session_id == session_id, Message.role == "assistant",
                Message.status.in_(ACTIVE)).order_by(Message.pk).limit(1))).first()
        return row.id if row is not None and row.status == "queued" else None

    async def stale_running(self, before: datetime, limit: int = 100) -> list[str]:
        """Running generations whose last heartbeat is older than `before`."""
        async with self.sessionmaker() as db:
            return list((await db.scalars(select(Message.id).where(
                Message.role == "assistant", Message.status == "running",
                or_(Message.heartbeat_at < before, Message.heartbeat_at.is_(None)))
                .order_by(Message.pk).limit(limit))).all())

    async def stuck_sessions(self, before: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(session, oldest queued generation) for sessions with a generation queued since
        before `before` and none running: nobody is draining them."""
        running = select(Message.session_id).where(
            Message.role == "assistant", Message.status == "running")
        async with self.sessionmaker() as db:
            rows = (await db.execute(select(Message.session_id, func.min(Message.pk)).where(
                Message.role == "assistant", Message.status == "queued", Message.created_at < before,
                Message.session_id.not_in(running)).group_by(Message.session_id).limit(limit))).all()
            if not rows:
                return []
            ids = dict((await db.execute(select(Message.pk, Message.id).where(
                Message.pk.in_([pk for _, pk in rows])))).all())
        return [(session_id, ids[pk]) for session_id, pk in rows]

    async def end_interrupted(self, generation_id: str, *, error: dict,
                              seal: Callable[[], Awaitable[tuple[str, int] | None]],
                              stale_before: datetime | None = None,
                              owner: str | None = None) -> Interrupted | None:
        """running -> failed / interrupted, by exactly one party: the conditional UPDATE
        (still running; heartbeat older than `stale_before`; run by `owner`) holds the row
        until commit. Only the winner calls `seal`, which stops the old producer and returns
        the stream log's (content, chunk seq); that replaces the stored text when present
        (the log is ahead of the last flush), else the stored text stands."""
        conditions = [Message.id == generation_id, Message.role == "assistant", Message.status == "running"]
        if stale_before is not None:
            conditions.append(or_(Message.heartbeat_at < stale_before, Message.heartbeat_at.is_(None)))
        if owner is not None:
            conditions.append(Message.worker_id == owner)
        async with self.sessionmaker() as db, db.begin():
            row = (await db.execute(update(Message).where(*conditions).values(
                status="failed", finish_reason="interrupted", error=error, finished_at=utcnow(),
            ).returning(Message.session_id, Message.content, Message.last_seq, Message.model))).first()
            if row is None:
                return None
            content, seq = row.content, row.last_seq
            snap = await seal()
            if snap is not None:
                content, seq = snap
            usage = {"prompt_tokens": 0, "completion_tokens": estimate_tokens(content)}
            await db.execute(update(Message).where(Message.id == generation_id).values(
                content=content, last_seq=seq + 1, usage=usage))
        return Interrupted(row.session_id, content, seq, usage, row.model)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")
