"""Refresh tokens: what keeps a browser signed in across reloads, new tabs and expiring
access tokens (SECURITY.md, "Staying signed in").

A token is 32 random bytes; only its sha256 is stored. Every use rotates it: the old one is
revoked and a new one, with a fresh lifetime, takes its place in the same family (one family
per sign-in). A revoked token shown again after REFRESH_REUSE_GRACE_SECONDS means a copy
exists somewhere else: the whole family is revoked and that sign-in ends. Within the grace,
two tabs renewing at once, the loser gets an access token but no new refresh token (the
winner's is in the shared cookie jar already)."""

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from config import Settings
from models.db import RefreshToken, new_id, utcnow
from services.db import Database
from services.errors import Unauthorized
from services.users import get_user


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Renewal:
    user_id: str
    family_id: str
    token: str | None  # the new refresh token; None within the reuse grace (keep the cookie)
    max_age: int  # its lifetime, seconds


class RefreshTokens:
    def __init__(self, settings: Settings, db: Database):
        self.s = settings
        self.db = db
        self.ttl = timedelta(days=settings.refresh_token_ttl_days)

    @property
    def max_age(self) -> int:
        return int(self.ttl.total_seconds())

    async def issue(self, user_id: str) -> Renewal:
        """A new sign-in: a new family. The user's oldest live sign-ins beyond
        REFRESH_TOKENS_PER_USER are revoked, and rows long expired are deleted."""
        now = utcnow()
        async with self.db.sessionmaker() as db:
            await db.execute(
                delete(RefreshToken).where(RefreshToken.user_id == user_id, RefreshToken.expires_at < now - self.ttl)
            )
            live = (
                await db.scalars(
                    select(RefreshToken.id)
                    .where(
                        RefreshToken.user_id == user_id,
                        RefreshToken.revoked_at.is_(None),
                        RefreshToken.expires_at > now,
                    )
                    .order_by(RefreshToken.created_at.desc(), RefreshToken.id.desc())
                )
            ).all()
            extra = list(live[self.s.refresh_tokens_per_user - 1 :])
            if extra:
                await db.execute(update(RefreshToken).where(RefreshToken.id.in_(extra)).values(revoked_at=now))
            token = await self._add(db, user_id, new_id(), now)
            await db.commit()
        return token

    async def _add(self, db: AsyncSession, user_id: str, family_id: str, now: datetime) -> Renewal:
        token = secrets.token_urlsafe(32)
        db.add(
            RefreshToken(
                user_id=user_id,
                family_id=family_id,
                token_hash=token_hash(token),
                created_at=now,
                expires_at=now + self.ttl,
            )
        )
        return Renewal(user_id, family_id, token, self.max_age)

    async def rotate(self, token: str | None) -> Renewal:
        """The renewal for a presented token, or Unauthorized (the family revoked on reuse)."""
        if not token:
            raise Unauthorized("No refresh token; sign in at POST /token.", code="refresh_token_missing")
        now = utcnow()
        async with self.db.sessionmaker() as db:
            row = await db.scalar(select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)))
            if row is None or row.expires_at <= now:
                raise Unauthorized("Refresh token expired or unknown; sign in again.", code="invalid_refresh_token")
            claimed: Any = await db.execute(
                update(RefreshToken)
                .where(RefreshToken.id == row.id, RefreshToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            won = claimed.rowcount == 1  # a concurrent rotation of the same token loses here
            if won:
                renewal = await self._add(db, row.user_id, row.family_id, now)
            else:
                renewal = await self._reused(db, row, now)
            await db.commit()
        await get_user(self.db, renewal.user_id)  # gone: 401; disabled: 403
        return renewal

    async def _reused(self, db: AsyncSession, row: RefreshToken, now: datetime) -> Renewal:
        revoked_at = row.revoked_at or now
        family_alive = await db.scalar(
            select(func.count())
            .select_from(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
        )
        if family_alive and now - revoked_at <= timedelta(seconds=self.s.refresh_reuse_grace_seconds):
            return Renewal(row.user_id, row.family_id, None, self.max_age)
        await db.execute(
            update(RefreshToken)
            .where(RefreshToken.family_id == row.family_id, RefreshToken.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        await db.commit()
        raise Unauthorized(
            "This refresh token was already used; the sign-in it belonged to has been ended. Sign in again.",
            code="refresh_token_reused",
        )

    async def revoke_family(self, user_id: str, family_id: str) -> None:
        async with self.db.sessionmaker() as db:
            await db.execute(
                update(RefreshToken)
                .where(
                    RefreshToken.user_id == user_id,
                    RefreshToken.family_id == family_id,
                    RefreshToken.revoked_at.is_(None),
                )
                .values(revoked_at=utcnow())
            )
            await db.commit()
