"""Chat sessions: create, list, read, change, delete. Every lookup is scoped to its owner,
so another user's session is indistinguishable from a missing one."""

from sqlalchemy import Connection, bindparam, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from config import Settings
from models.db import ChatSession, Message, utcnow
from models.schemas import SessionPatch, SetLLM, is_blank
from services import tables
from services.db import AnyRow, Database, sqlite_driver
from services.errors import InvalidInput, NotFound
from services.providers.registry import ProviderRegistry
from services.search import ChatSearch, Hit, activity, for_backend, last_message_at, parse_query

_table = tables.chat_sessions
_owned = select(_table).where(_table.c.id == bindparam("sid"), _table.c.user_id == bindparam("uid"))


def _owned_row(conn: Connection, user_id: str, session_id: str) -> AnyRow | None:
    return conn.execute(_owned, {"sid": session_id, "uid": user_id}).first()


_owned_id = select(_table.c.id).where(_table.c.id == bindparam("sid"), _table.c.user_id == bindparam("uid"))
# The same check on SQLite's own cursor: one SQLAlchemy execution costs many times the
# statement (see services/generations/store_sqlite.py), and a socket opens with it.
_OWNED_ID_SQLITE = "SELECT id FROM chat_sessions WHERE id = ? AND user_id = ?"


def _owned_id_core(conn: Connection, user_id: str, session_id: str) -> str | None:
    return conn.execute(_owned_id, {"sid": session_id, "uid": user_id}).scalar()


def _owned_id_sqlite(conn: Connection, user_id: str, session_id: str) -> str | None:
    row = sqlite_driver(conn).execute(_OWNED_ID_SQLITE, (session_id, user_id)).fetchone()
    return None if row is None else str(row[0])


class SessionService:
    def __init__(self, settings: Settings, providers: ProviderRegistry, search: ChatSearch | None = None):
        self.s = settings
        self.providers = providers
        self.search = search or for_backend(settings.sqlalchemy_url.startswith("sqlite"))

    def check_message(self, text: str) -> str:
        """A user's message, as every transport (REST, WebSocket) accepts it, or InvalidInput."""
        if is_blank(text):
            raise InvalidInput("message: must not be empty", code="empty_message")
        limit = self.s.max_message_chars
        if len(text) > limit:
            raise InvalidInput(f"message: at most {limit} characters (got {len(text)})", code="message_too_long")
        return text

    async def _check_config(
        self, model_name: str | None, system_prompt: str | None, fallbacks: list[str] | None
    ) -> tuple[str | None, list[str] | None]:
        if system_prompt is not None and len(system_prompt) > self.s.max_system_prompt_chars:
            raise InvalidInput(
                f"system_prompt: at most {self.s.max_system_prompt_chars} characters", code="system_prompt_too_long"
            )
        model = await self.providers.validate(model_name) if model_name is not None else None
        checked = [await self.providers.validate(m) for m in fallbacks] if fallbacks is not None else None
        return model, checked

    async def create(self, db: AsyncSession, user_id: str, body: SetLLM) -> ChatSession:
        model, fallbacks = await self._check_config(
            body.model_name or self.s.default_model, body.system_prompt, body.fallback_models
        )
        chat = ChatSession(
            user_id=user_id,
            title=body.title or "",
            model_name=model,
            temperature=body.temperature,
            max_tokens=body.max_tokens,
            top_p=body.top_p,
            system_prompt=body.system_prompt or None,
            fallback_models=fallbacks or [],
        )
        db.add(chat)
        await db.commit()
        return chat

    async def find(self, db: Database, user_id: str, session_id: str) -> AnyRow:
        """The session's row (read-only), for sending into it: one Core statement per
        message or socket instead of an ORM session."""
        row = await db.run(_owned_row, user_id, session_id)
        if row is None:
            raise NotFound(f"session {session_id} not found", code="session_not_found")
        return row

    async def check_owned(self, db: Database, user_id: str, session_id: str) -> str:
        """The session's id if the user owns it (NotFound otherwise), without reading the row:
        for a socket, whose messages read the session in their own transaction."""
        found = await db.run(_owned_id_sqlite if db.is_sqlite else _owned_id_core, user_id, session_id)
        if found is None:
            raise NotFound(f"session {session_id} not found", code="session_not_found")
        return found

    async def get(self, db: AsyncSession, user_id: str, session_id: str) -> ChatSession:
        chat = await db.scalar(select(ChatSession).where(ChatSession.id == session_id, ChatSession.user_id == user_id))
        if chat is None:
            raise NotFound(f"session {session_id} not found", code="session_not_found")
        return chat

    async def page(
        self, db: AsyncSession, user_id: str, limit: int, offset: int, kind: str = "chat", q: str | None = None
    ) -> tuple[list[Hit], int]:
        """One kind only: the sessions /v1 calls create ("api") stay out of the UI's list.
        Last activity first: a chat's last message, or its creation before it has one. With
        `q`, only the chats whose title or messages match it (services/search.py)."""
        if q is not None and q.strip() and kind == "chat":
            query = parse_query(q, self.s.search_max_query_chars, self.s.search_max_terms)
            return await self.search.search(db, user_id, query, limit, offset)
        mine = (ChatSession.user_id == user_id, ChatSession.kind == kind)
        total = await db.scalar(select(func.count()).select_from(ChatSession).where(*mine))
        rows = (
            await db.execute(
                select(ChatSession, last_message_at.label("last_at"))
                .where(*mine)
                .order_by(activity.desc(), ChatSession.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        return [Hit(chat, last_at, None) for chat, last_at in rows], total or 0

    async def history(self, db: AsyncSession, session_id: str) -> list[Message]:
        return list(
            (await db.scalars(select(Message).where(Message.session_id == session_id).order_by(Message.pk))).all()
        )

    async def update(self, db: AsyncSession, user_id: str, session_id: str, body: SessionPatch) -> ChatSession:
        chat = await self.get(db, user_id, session_id)
        changes = body.model_dump(exclude_unset=True)
        if changes.get("model_name", "") is None or any(
            changes.get(k, 0) is None for k in ("temperature", "max_tokens", "top_p")
        ):
            raise InvalidInput("model_name, temperature, max_tokens and top_p cannot be null", code="invalid_config")
        model, fallbacks = await self._check_config(
            changes.get("model_name"), changes.get("system_prompt"), changes.get("fallback_models")
        )
        if model:
            changes["model_name"] = model
        if fallbacks is not None:
            changes["fallback_models"] = fallbacks
        if "system_prompt" in changes:
            changes["system_prompt"] = changes["system_prompt"] or None
        if "title" in changes:
            changes["title"] = changes["title"] or ""
        for key, value in changes.items():
            setattr(chat, key, value)
        chat.updated_at = utcnow()
        await db.commit()
        return chat

    async def delete(self, db: AsyncSession, user_id: str, session_id: str) -> None:
        chat = await self.get(db, user_id, session_id)
        await db.execute(delete(Message).where(Message.session_id == chat.id))
        await db.delete(chat)
        await db.commit()
