"""Searching a user's chats by title and message text, through one interface with one
implementation per backend: SQLite's FTS5 table `messages_fts`, PostgreSQL's full-text
search over the GIN-indexed `to_tsvector('simple', content)` (migration 0003_search_refresh).

Both read a query the same way: its words (letters and digits), each to be present as a word
or the start of one, all of them in one message; the title matches when it contains the query
as typed (case-insensitive). A chat matches by either. Results are in the listing's order:
last activity first."""

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from models.db import ChatSession, Message, UTCDateTime
from services.errors import InvalidInput

_WORD = re.compile(r"\w+")
_LIKE_SPECIALS = re.compile(r"([\\%_])")
_SNIPPET_WORDS = 12

# The time of a chat's last message (None before the first): what the sidebar shows and
# sorts by. One probe of ix_messages_session_pk per chat.
last_message_at = (
    select(Message.created_at)
    .where(Message.session_id == ChatSession.id)
    .order_by(Message.pk.desc())
    .limit(1)
    .correlate(ChatSession)
    .scalar_subquery()
)
activity = func.coalesce(last_message_at, ChatSession.created_at, type_=UTCDateTime())


@dataclass(frozen=True)
class Query:
    raw: str  # as typed, stripped: what a title is matched against
    terms: list[str]  # its words, lower-cased, at most SEARCH_MAX_TERMS


@dataclass
class Hit:
    chat: ChatSession
    last_message_at: datetime | None
    snippet: str | None  # part of the newest matching message; None when only the title matched


def parse_query(q: str, max_chars: int, max_terms: int) -> Query:
    raw = " ".join(q.replace("\x00", "").split())  # PostgreSQL text holds no NUL
    if len(raw) > max_chars:
        raise InvalidInput(f"q: at most {max_chars} characters", code="query_too_long")
    return Query(raw, [w.lower() for w in _WORD.findall(raw)][:max_terms])


class ChatSearch(ABC):
    """`search(db, user_id, query, limit, offset)`: (hits, total) among the user's chats."""

    async def search(
        self, db: AsyncSession, user_id: str, query: Query, limit: int, offset: int
    ) -> tuple[list[Hit], int]:
        mine = (ChatSession.user_id == user_id, ChatSession.kind == "chat")
        like = "%" + _LIKE_SPECIALS.sub(r"\\\1", query.raw) + "%"
        matches: list[ColumnElement[bool]] = [ChatSession.title.ilike(like, escape="\\")]
        if query.terms:
            matches.append(ChatSession.id.in_(self.matching_sessions(query.terms)))
        where = (*mine, or_(*matches))
        total = await db.scalar(select(func.count()).select_from(ChatSession).where(*where)) or 0
        rows = (
            await db.execute(
                select(ChatSession, last_message_at.label("last_at"))
                .where(*where)
                .order_by(activity.desc(), ChatSession.id.desc())
                .limit(limit)
                .offset(offset)
            )
        ).all()
        hits = []
        for chat, last_at in rows:
            snippet = await self.snippet(db, chat.id, query.terms) if query.terms else None
            hits.append(Hit(chat, last_at, snippet))
        return hits, total

    @abstractmethod
    def matching_sessions(self, terms: list[str]) -> Select[Any]:
        """SELECT of the ids of sessions with a message holding every term."""

    @abstractmethod
    async def snippet(self, db: AsyncSession, session_id: str, terms: list[str]) -> str | None:
        """A few words around the match in the session's newest matching message."""


class SqliteSearch(ChatSearch):
    @staticmethod
    def _match(terms: list[str]) -> str:
        # Each word quoted (FTS5 syntax in a query is then plain text) and a prefix.
        return " ".join('"' + t.replace('"', '""') + '"*' for t in terms)

    def matching_sessions(self, terms: list[str]) -> Select[Any]:
        fts = (
            text("SELECT session_id FROM messages_fts WHERE messages_fts MATCH :fts_q")
            .bindparams(fts_q=self._match(terms))
            .columns(literal_column("session_id"))
        )
        return select(fts.subquery().c.session_id)

    async def snippet(self, db: AsyncSession, session_id: str, terms: list[str]) -> str | None:
        found: str | None = await db.scalar(
            text(
                "SELECT snippet(messages_fts, 0, '', '', '…', :n) FROM messages_fts "
                "WHERE messages_fts MATCH :q AND session_id = :sid ORDER BY rowid DESC LIMIT 1"
            ),
            {"q": self._match(terms), "sid": session_id, "n": _SNIPPET_WORDS},
        )
        return found


class PostgresSearch(ChatSearch):
    @staticmethod
    def _tsquery(terms: list[str]) -> ColumnElement[Any]:
        # Words only (\w+): nothing in them is tsquery syntax; `:*` makes each a prefix.
        return func.to_tsquery("simple", " & ".join(f"{t}:*" for t in terms))

    @staticmethod
    def _vector() -> ColumnElement[Any]:
        return func.to_tsvector("simple", Message.content)  # the indexed expression, exactly

    def matching_sessions(self, terms: list[str]) -> Select[Any]:
        return select(Message.session_id).where(
            self._vector().bool_op("@@")(self._tsquery(terms)), Message.status.not_in(("queued", "running"))
        )

    async def snippet(self, db: AsyncSession, session_id: str, terms: list[str]) -> str | None:
        headline = func.ts_headline(
            "simple",
            Message.content,
            self._tsquery(terms),
            f'StartSel="",StopSel="",MaxWords={_SNIPPET_WORDS},MinWords=4',
        )
        found: str | None = await db.scalar(
            select(headline)
            .where(
                Message.session_id == session_id,
                self._vector().bool_op("@@")(self._tsquery(terms)),
                Message.status.not_in(("queued", "running")),
            )
            .order_by(Message.pk.desc())
            .limit(1)
        )
        return found


def for_backend(is_sqlite: bool) -> ChatSearch:
    return SqliteSearch() if is_sqlite else PostgresSearch()
