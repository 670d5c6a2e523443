"""Database tables. A generation is stored as its assistant message: one row holds the
answer's text, status and stream position, so history and generation never disagree."""

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Dialect, Float, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator
from ulid import ULID


def new_id() -> str:
    return str(ULID())


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on every backend: SQLite stores no zone and hands back naive
    values, which would serialize without a `Z` and compare wrongly with aware ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("ix_users_username_normalized", "username_normalized", unique=True),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    # NFKC + case-folded username (auth/passwords.py): what uniqueness and sign-in compare.
    # Nullable in the schema only because adding a NOT NULL column to a filled SQLite table
    # means rebuilding it; every row has one (migration 0002_sec_limits fills them).
    username_normalized: Mapped[str | None] = mapped_column(String(300), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # Per-user overrides of the resource limits (services/limits/overrides.py), e.g.
    # {"requests_per_minute": 1200}; null: the settings' defaults.
    limits: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    role: Mapped[str] = mapped_column(String(16), default="user", server_default="user")  # user | admin
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Token budgets (prompt + completion), None: unlimited
    daily_token_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)
    monthly_token_budget: Mapped[int | None] = mapped_column(Integer, nullable=True)


class ChatSession(Base):
    __tablename__ = "chat_sessions"
    __table_args__ = (Index("ix_chat_sessions_user_kind", "user_id", "kind"),)

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    model_name: Mapped[str] = mapped_column(String(200))
    temperature: Mapped[float] = mapped_column(Float)
    max_tokens: Mapped[int] = mapped_column(Integer)
    top_p: Mapped[float] = mapped_column(Float)
    system_prompt: Mapped[str | None] = mapped_column(Text, nullable=True)
    fallback_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    # "chat" (the UI's), or "api": one per OpenAI-compatible call, listed apart (0002)
    kind: Mapped[str] = mapped_column(String(16), default="chat", server_default="chat")
    options: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)  # stop, metadata, input items
    # The last message of the branch shown and continued (0003): a send answers it, and
    # switching versions moves it. No foreign key: messages already point at their session.
    active_leaf_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Message(Base):
    """A user message, or an assistant message that is also a generation (same id)."""

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_session_pk", "session_id", "pk"),
        Index("ix_messages_session_client_msg", "session_id", "client_msg_id", unique=True),
        Index("ix_messages_status", "status"),
    )

    # Integer key gives submission order; ULIDs made within one millisecond do not sort.
    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    id: Mapped[str] = mapped_column(String(26), unique=True, default=new_id)
    session_id: Mapped[str] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="completed")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # For a user message: the generation answering it. For an assistant message: itself.
    generation_id: Mapped[str | None] = mapped_column(String(26), nullable=True)
    client_msg_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # The message this one follows (0003): a conversation is a tree. A user message's parent
    # is the answer it replies to (None: the first message); an answer's parent is its user
    # message, or the answer it continues. Siblings are versions (regenerated, edited).
    parent_id: Mapped[str | None] = mapped_column(String(26), nullable=True, index=True)

    # Generation fields (assistant messages only)
    model: Mapped[str | None] = mapped_column(String(200), nullable=True)
    finish_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    # Every chunk seq ever sent is <= this (reserved ahead at claim and flush): where a crash
    # recovery puts the done frame, above seqs that were sent but never stored.
    seq_reserved: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Scale-out: which worker runs it and when it last proved alive.
    worker_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ApiKey(Base):
    """A user's API key. Only a keyed hash of the secret is kept; `prefix` (public, shown
    in listings) finds the row, so checking a key is one indexed lookup."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)


class UsageRecord(Base):
    """Tokens of one finished generation, kept apart from the messages so that deleting a
    session does not erase what its user spent. `day` (UTC, YYYY-MM-DD) makes the per-day
    sums and budget checks plain comparisons on every backend."""

    __tablename__ = "usage_records"
    __table_args__ = (Index("ix_usage_user_day", "user_id", "day"), Index("ix_usage_day", "day"))

    pk: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    generation_id: Mapped[str] = mapped_column(String(26), unique=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    session_id: Mapped[str | None] = mapped_column(String(26), nullable=True)  # may be deleted since
    model: Mapped[str] = mapped_column(String(200), default="")
    day: Mapped[str] = mapped_column(String(10))
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)
    completion_tokens: Mapped[int] = mapped_column(Integer, default=0)
    estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RefreshToken(Base):
    """One refresh token of a sign-in. Only the sha256 of the (256-bit random) token is
    kept. A sign-in's tokens share a `family_id`: rotating revokes the old one, and showing a
    revoked one again revokes the whole family (services/refresh_tokens.py)."""

    __tablename__ = "refresh_tokens"

    id: Mapped[str] = mapped_column(String(26), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    family_id: Mapped[str] = mapped_column(String(26), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
