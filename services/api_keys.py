"""Per-user API keys: created, listed and revoked by their owner, checked on every request.

A key reads `sk-chat-<12 base32 chars>_<43 url-safe chars>`. The first part (the `prefix`,
shown in listings) finds the row; the whole key is stored only as an HMAC-SHA256 under a
server-side key, so a leaked table gives nothing to sign in with, and the comparison is
constant-time. A revoked key's row is deleted: refusing it needs nothing but the lookup,
on whichever replica the request lands."""

import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from hashlib import sha256

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from models.api_keys import NAME_PATTERN
from models.db import new_id, utcnow
from services import tables
from services.db import Database
from services.errors import Conflict, InvalidInput, NotFound, Unauthorized
from services.json_types import JSONObject

KEY_PREFIX = "sk-chat-"
_KEY_RE = re.compile(r"sk-chat-([a-z2-7]{12})_([A-Za-z0-9_-]{43})")
_NAME_RE = re.compile(NAME_PATTERN)
_BASE32 = "abcdefghijklmnopqrstuvwxyz234567"
_keys = tables.api_keys
_by_prefix = select(_keys.c.id, _keys.c.user_id, _keys.c.secret_hash, _keys.c.expires_at, _keys.c.last_used_at).where(
    _keys.c.prefix == bindparam("prefix")
)
_by_id = select(_keys.c.expires_at).where(_keys.c.id == bindparam("kid"))
_touch = update(_keys).where(_keys.c.id == bindparam("kid")).values(last_used_at=bindparam("now"))
LISTED = (_keys.c.id, _keys.c.name, _keys.c.prefix, _keys.c.created_at, _keys.c.last_used_at, _keys.c.expires_at)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the user, the API key when it was one, and when the credential ends
    (epoch seconds; None for a key without expiry)."""

    user_id: str
    key_id: str | None = None
    expires_at: float | None = None


def _refused() -> Unauthorized:
    # One answer for malformed, unknown and revoked keys: nothing tells them apart.
    return Unauthorized("Invalid or revoked API key.", code="invalid_api_key")


class ApiKeyService:
    def __init__(self, db: Database, hash_key: str, per_user: int, max_days: int, touch_interval: float):
        self.db, self._hash_key = db, hash_key.encode()
        self.per_user, self.max_days, self.touch_interval = per_user, max_days, touch_interval

    def _hash(self, key: str) -> str:
        return hmac.new(self._hash_key, key.encode(), sha256).hexdigest()

    async def create(self, user_id: str, name: str, expires_in_days: int | None) -> tuple[JSONObject, str]:
        """The stored row (as listed) and the full key, which is never available again."""
        if not _NAME_RE.match(name) or len(name) > 100:  # the route's model checks it too; the CLI does not
            raise InvalidInput("name must be 1-100 visible characters", code="invalid_name")
        name = name.strip()
        if expires_in_days is not None and not 1 <= expires_in_days <= self.max_days:
            raise InvalidInput(f"expires_in_days must be 1-{self.max_days}", code="invalid_expiry")
        prefix = KEY_PREFIX + "".join(secrets.choice(_BASE32) for _ in range(12))
        key = f"{prefix}_{secrets.token_urlsafe(32)}"
        now = utcnow()
        row: JSONObject = {
            "id": new_id(),
            "user_id": user_id,
            "name": name,
            "prefix": prefix,
            "secret_hash": self._hash(key),
            "created_at": now,
            "last_used_at": None,
            "expires_at": now + timedelta(days=expires_in_days) if expires_in_days else None,
        }
        await self.db.run(self._insert, row)
        return {k: row[k] for k in ("id", "name", "prefix", "created_at", "last_used_at", "expires_at")}, key

    def _insert(self, conn: Connection, row: JSONObject) -> None:
        live = (_keys.c.user_id == row["user_id"]) & (
            _keys.c.expires_at.is_(None) | (_keys.c.expires_at > row["created_at"])
        )
        if conn.execute(select(func.count()).where(live)).scalar_one() >= self.per_user:
            raise Conflict(f"at most {self.per_user} API keys per user; revoke one first", code="too_many_api_keys")
        conn.execute(
            delete(_keys).where(  # expired keys only take room
                (_keys.c.user_id == row["user_id"]) & (_keys.c.expires_at <= row["created_at"])
            )
        )
        conn.execute(insert(_keys).values(**row))

    async def list(self, user_id: str) -> list[JSONObject]:
        query = select(*LISTED).where(_keys.c.user_id == user_id).order_by(_keys.c.id.desc())
        return await self.db.run(lambda conn: [dict(r._mapping) for r in conn.execute(query)])

    async def revoke(self, user_id: str, key_id: str) -> None:
        """Deletes the user's key; another user's key is answered like a missing one."""
        stmt = delete(_keys).where((_keys.c.id == key_id) & (_keys.c.user_id == user_id))
        if (await self.db.run(lambda conn: conn.execute(stmt).rowcount)) == 0:
            raise NotFound("API key not found", code="api_key_not_found")

    async def authenticate(self, key: str) -> Principal:
        match = _KEY_RE.fullmatch(key)
        if match is None:
            raise _refused()
        return await self.db.run(self._check, key, KEY_PREFIX + match.group(1))

    def _check(self, conn: Connection, key: str, prefix: str) -> Principal:
        row = conn.execute(_by_prefix, {"prefix": prefix}).first()
        if row is None or not hmac.compare_digest(row.secret_hash, self._hash(key)):
            raise _refused()
        now = utcnow()
        if row.expires_at is not None and row.expires_at <= now:
            raise Unauthorized("API key expired; create a new one.", code="api_key_expired")
        if row.last_used_at is None or now - row.last_used_at >= timedelta(seconds=self.touch_interval):
            conn.execute(_touch, {"kid": row.id, "now": now})
        return Principal(row.user_id, row.id, row.expires_at.timestamp() if row.expires_at else None)

    async def still_valid(self, principal: Principal) -> None:
        """Raises Unauthorized once the principal's key is revoked or expired (a JWT one
        ends by its own timer): the per-frame check of long-lived sockets."""
        if principal.key_id is None:
            return
        row = await self.db.run(lambda conn: conn.execute(_by_id, {"kid": principal.key_id}).first())
        if row is None:
            raise _refused()
        if row.expires_at is not None and row.expires_at <= utcnow():
            raise Unauthorized("API key expired; create a new one.", code="api_key_expired")
