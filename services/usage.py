"""Token usage per generation, per-user budgets, and the per-process cache of each user's
policy (role, disabled, budgets) that a send is checked against.

A generation's usage is recorded when it ends (one row, kept when its session is deleted).
A send is refused (429 quota_exceeded) when the user's tokens of the current UTC day or
month have reached a budget; an answer already accepted or running is never cut."""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, bindparam, case, func, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import IntegrityError

from models.db import utcnow
from services import tables
from services.db import AnyRow, Database, sqlite_driver
from services.errors import Forbidden, RateLimited, Unauthorized
from services.json_types import JSONObject
from services.observability import metrics

usage_t, users_t = tables.usage_records, tables.users
messages_t, chats_t = tables.messages, tables.chat_sessions

_owner = (
    select(chats_t.c.user_id, messages_t.c.session_id)
    .join(chats_t, chats_t.c.id == messages_t.c.session_id)
    .where(messages_t.c.id == bindparam("gid"))
)
_policy = select(
    users_t.c.role, users_t.c.disabled, users_t.c.daily_token_budget, users_t.c.monthly_token_budget
).where(users_t.c.id == bindparam("uid"))
_spent = select(func.coalesce(func.sum(usage_t.c.prompt_tokens + usage_t.c.completion_tokens), 0)).where(
    usage_t.c.user_id == bindparam("uid"), usage_t.c.day >= bindparam("since")
)


@dataclass(frozen=True)
class Policy:
    role: str
    disabled: bool
    daily: int | None
    monthly: int | None


def utc_day(moment: datetime | None = None) -> str:
    return (moment or utcnow()).astimezone(UTC).date().isoformat()


def record_usage(conn: Connection, generation_id: str, model: str, usage: JSONObject) -> tuple[str, str] | None:
    """Stores a finished generation's tokens; (user_id, session_id), or None when its session
    is already gone."""
    owner = conn.execute(_owner, {"gid": generation_id}).first()
    if owner is None:
        return None
    conn.execute(
        insert(usage_t).values(
            generation_id=generation_id,
            user_id=owner.user_id,
            session_id=owner.session_id,
            model=model or "",
            day=utc_day(),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            estimated=bool(usage.get("estimated")),
            created_at=utcnow(),
        )
    )
    return owner.user_id, owner.session_id


# SQLite: the same row in one statement on the driver's cursor (see store_sqlite: each
# SQLAlchemy execution costs far more Python than the statement), once per generation.
_RECORD = (
    "INSERT INTO usage_records (generation_id, user_id, session_id, model, day, prompt_tokens, "
    "completion_tokens, estimated, created_at) SELECT m.id, c.user_id, m.session_id, ?, ?, ?, ?, ?, ? "
    "FROM messages m JOIN chat_sessions c ON c.id = m.session_id WHERE m.id = ? "
    "ON CONFLICT (generation_id) DO NOTHING RETURNING user_id, session_id"
)
_bind_when = usage_t.c.created_at.type.dialect_impl(sqlite.dialect()).bind_processor(sqlite.dialect())
assert _bind_when is not None  # SQLite has no datetime type: its DateTime always converts
_when = _bind_when


def record_usage_sqlite(conn: Connection, generation_id: str, model: str, usage: JSONObject) -> tuple[str, str] | None:
    row = (
        sqlite_driver(conn)
        .execute(
            _RECORD,
            (
                model or "",
                utc_day(),
                int(usage.get("prompt_tokens") or 0),
                int(usage.get("completion_tokens") or 0),
                1 if usage.get("estimated") else 0,
                _when(utcnow()),
                generation_id,
            ),
        )
        .fetchone()
    )
    return None if row is None else (row[0], row[1])


def _read_policy(conn: Connection, user_id: str) -> Policy | None:
    row = conn.execute(_policy, {"uid": user_id}).first()
    return (
        None if row is None else Policy(row.role, bool(row.disabled), row.daily_token_budget, row.monthly_token_budget)
    )


def _spent_since(conn: Connection, user_id: str, since: str) -> int:
    return int(conn.execute(_spent, {"uid": user_id, "since": since}).scalar_one())


def _days_before(day: date, days: int) -> date:
    return day - timedelta(days=days) if (day - date.min).days >= days else date.min


def _seconds_until(moment: datetime) -> float:
    return max(1.0, (moment - datetime.now(UTC)).total_seconds())


class UsageService:
    def __init__(self, db: Database, policy_ttl: float, max_days: int):
        self.db = db
        self.ttl = policy_ttl
        self.max_days = max_days
        self._cache: dict[str, tuple[float, Policy | None]] = {}
        self._record = record_usage_sqlite if db.is_sqlite else record_usage

    async def record(self, generation_id: str, model: str, usage: JSONObject) -> tuple[str, str] | None:
        try:
            return await self.db.run(self._record, generation_id, model, usage)
        except IntegrityError:  # already recorded (a generation ends once; a replay is harmless)
            return None

    async def policy(self, user_id: str) -> Policy | None:
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        policy = await self.db.run(_read_policy, user_id)
        if len(self._cache) > 50_000:  # bounded: expired entries only matter to memory
            self._cache.clear()
        self._cache[user_id] = (now + self.ttl, policy)
        return policy

    def forget(self, user_id: str) -> None:
        """An admin changed this user: the next check reads the database."""
        self._cache.pop(user_id, None)

    async def admit(self, user_id: str, budgets: bool = True) -> None:
        """Refuses a send from a missing or disabled user, or (`budgets`) one over a token
        budget."""
        policy = await self.policy(user_id)
        if policy is None:
            raise Unauthorized("The token's user no longer exists.", code="invalid_token")
        if policy.disabled:
            raise Forbidden("This account is disabled.", code="user_disabled")
        if not budgets:
            return
        now = datetime.now(UTC)
        for period, budget, start, end in self._periods(policy, now):
            if await self.db.run(_spent_since, user_id, start.date().isoformat()) >= budget:
                metrics.QUOTA_REFUSALS.labels(period).inc()
                raise RateLimited(
                    f"The {period} token budget ({budget} tokens) is used up.",
                    code="quota_exceeded",
                    retry_after=_seconds_until(end),
                )

    @staticmethod
    def _periods(policy: Policy, now: datetime) -> Iterator[tuple[str, int, datetime, datetime]]:
        day = now.replace(hour=0, minute=0, second=0, microsecond=0)
        if policy.daily is not None:
            yield "daily", policy.daily, day, day + timedelta(days=1)
        if policy.monthly is not None:
            month = day.replace(day=1)
            yield "monthly", policy.monthly, month, (month + timedelta(days=32)).replace(day=1)

    def window(self, start: date | None, end: date | None) -> tuple[date, date]:
        """The days asked for, at most USAGE_MAX_DAYS ending at `end` (a wider range is cut
        at its start; the answer says which range it covers). `from` after `to`: no day."""
        end = end or datetime.now(UTC).date()
        earliest = _days_before(end, self.max_days - 1)
        start = max(start or _days_before(end, 29), earliest)
        return start, end

    async def summary(self, user_id: str | None, start: date | None, end: date | None) -> JSONObject:
        """Tokens per day and model for one user, or per user too (user_id None: everyone)."""
        start, end = self.window(start, end)
        rows = await self.db.run(_summary, user_id, start.isoformat(), end.isoformat())
        days = [dict(row._mapping) for row in rows]
        total = {k: sum(d[k] for d in days) for k in ("prompt_tokens", "completion_tokens", "generations")}
        return {"from": start.isoformat(), "to": end.isoformat(), "usage": days, "total": total}


def _summary(conn: Connection, user_id: str | None, start: str, end: str) -> Sequence[AnyRow]:
    keys = [usage_t.c.day, usage_t.c.model]
    if user_id is None:
        keys = [usage_t.c.user_id, users_t.c.username, *keys]
    query = (
        select(
            *keys,
            func.sum(usage_t.c.prompt_tokens).label("prompt_tokens"),
            func.sum(usage_t.c.completion_tokens).label("completion_tokens"),
            func.count().label("generations"),
            func.sum(case((usage_t.c.estimated, 1), else_=0)).label("estimated_generations"),
        )
        .join(users_t, users_t.c.id == usage_t.c.user_id)
        .where(usage_t.c.day >= start, usage_t.c.day <= end)
        .group_by(*keys)
        .order_by(*keys)
    )
    if user_id is not None:
        query = query.where(usage_t.c.user_id == user_id)
    return conn.execute(query).all()
