"""Per-user overrides of the resource limits, kept in `users.limits` (JSON, null = defaults).

The admin API (PUT /admin/users/{id}/limits) and the CLI (set-limits) call
`Limits.set_user_limits`; each process caches a user's overrides for USER_LIMITS_CACHE_TTL
seconds, so other replicas apply a change within that time."""

import time

from sqlalchemy import Connection, bindparam, select, update

from services import tables
from services.db import Database
from services.errors import InvalidInput, NotFound

# The names an override may set; each defaults to the setting `USER_<NAME>`.
OVERRIDABLE = (
    "requests_per_minute",
    "max_running_generations",
    "max_queued_generations",
    "sessions_per_hour",
    "max_open_streams",
)
MAX_VALUE = 10_000_000
_CACHE_MAX = 10_000  # users whose overrides one process remembers at once
_users = tables.users
_get = select(_users.c.limits).where(_users.c.id == bindparam("uid"))


# A user's own limits: {name in OVERRIDABLE: value}, stored in users.limits.
Overrides = dict[str, int]


def check_overrides(values: object) -> Overrides | None:
    """`values` as an admin sent them (any JSON): checked, or InvalidInput."""
    if values is None:
        return None
    if not isinstance(values, dict):
        raise InvalidInput("limits must be an object", code="invalid_limits")
    unknown = set(values) - set(OVERRIDABLE)
    if unknown:
        raise InvalidInput(f"unknown limits {sorted(unknown)}; known: {', '.join(OVERRIDABLE)}", code="invalid_limits")
    for name, value in values.items():
        if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_VALUE:
            raise InvalidInput(f"{name} must be an integer from 1 to {MAX_VALUE}", code="invalid_limits")
    return dict(values) or None


def _read(conn: Connection, user_id: str) -> Overrides:
    value = conn.execute(_get, {"uid": user_id}).scalar()
    return value if isinstance(value, dict) else {}


def _write(conn: Connection, user_id: str, values: Overrides | None) -> bool:
    return conn.execute(update(_users).where(_users.c.id == user_id).values(limits=values)).rowcount == 1


class OverrideCache:
    def __init__(self, db: Database, ttl: float):
        self.db = db
        self.ttl = ttl
        self._cache: dict[str, tuple[float, Overrides]] = {}

    async def get(self, user_id: str) -> Overrides:
        now = time.monotonic()
        hit = self._cache.get(user_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        values = await self.db.run(_read, user_id)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[user_id] = (now + self.ttl, values)
        return values

    async def set(self, user_id: str, values: object) -> Overrides | None:
        checked = check_overrides(values)
        if not await self.db.run(_write, user_id, checked):
            raise NotFound(f"user {user_id} not found", code="user_not_found")
        self._cache.pop(user_id, None)
        return checked
