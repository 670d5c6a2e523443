"""The limits layer: the sign-in limiter and per-user resource limits, one object per
process (built by services/container.py). Every check runs once per request, socket,
session or generation start, never per token. Over a limit: RateLimited (429 / 4429)."""

import hashlib
import logging
import math
import time

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from auth.passwords import normalize_username
from config import Settings
from services.db import Database
from services.errors import RateLimited, Unavailable
from services.generations import store_sql, store_sqlite
from services.generations.store_protocol import ActiveCheck
from services.limits.overrides import OverrideCache, Overrides
from services.limits.storage import build_storage
from services.limits.streams import MemorySlots, RedisSlots, Slots, SlotsUnavailable

log = logging.getLogger(__name__)

# What a client is told to wait when a bound on work in progress (not a rate) is hit.
BUSY_RETRY_AFTER = 5.0


def account_key(username: str) -> str:
    """A fixed-size key for a sign-in name: its normalised form (cut first), hashed."""
    return hashlib.blake2b(normalize_username(username).encode("utf-8", "replace"), digest_size=12).hexdigest()


class StreamLease:
    def __init__(self, slots: Slots, user_id: str, slot: str | None) -> None:
        self.slots, self.user_id, self.slot = slots, user_id, slot

    async def release(self) -> None:
        slot, self.slot = self.slot, None
        if slot is not None:
            await self.slots.release(self.user_id, slot)


class Limits:
    def __init__(self, settings: Settings, db: Database):
        self.s = settings
        self.storage = build_storage(settings.redis_url, settings.redis_key_prefix, settings.limiter_max_entries)
        self.rate = FixedWindowRateLimiter(self.storage)
        self.slots: Slots = (
            RedisSlots(settings.redis_url, settings.redis_key_prefix) if settings.redis_url else MemorySlots()
        )
        self.overrides = OverrideCache(db, settings.user_limits_cache_ttl)
        self.db = db
        self._items: dict[tuple[int, int], RateLimitItem] = {}
        self._warned_at = 0.0  # when the next "storage unavailable" warning may be logged

    def _item(self, amount: int, seconds: float) -> RateLimitItem:
        key = (amount, math.ceil(seconds))
        item = self._items.get(key)
        if item is None:
            item = self._items[key] = RateLimitItemPerSecond(amount, key[1])
        return item

    async def _refused(self, item: RateLimitItem, kind: str, ident: str, code: str, detail: str) -> RateLimited:
        reset, _ = await self.rate.get_window_stats(item, kind, ident)
        return RateLimited(detail, retry_after=reset - time.time(), code=code, limit=item.amount)

    async def _hit(self, amount: int, seconds: float, kind: str, ident: str, code: str, detail: str) -> None:
        """Resource limits fail open: when the shared store is down, serving users beats
        refusing them all (the sign-in limiter fails closed instead)."""
        item = self._item(amount, seconds)
        try:
            allowed = await self.rate.hit(item, kind, ident)
        except StorageError as exc:
            return self._unavailable(exc)
        if not allowed:
            raise await self._refused(item, kind, ident, code, detail)

    def _unavailable(self, exc: Exception) -> None:
        now = time.monotonic()
        if now >= self._warned_at:
            self._warned_at = now + 60  # one line a minute, not one per request
            log.warning("limits storage unavailable, per-user limits not enforced: %s", exc)

    async def user_limit(self, user_id: str, name: str) -> int:
        default: int = getattr(self.s, "user_" + name)  # USER_<NAME>, the limit of every user without their own
        return (await self.overrides.get(user_id)).get(name) or default

    async def set_user_limits(self, user_id: str, values: object) -> Overrides | None:
        """Replaces a user's overrides ({name: value}, names in overrides.OVERRIDABLE; None
        restores the defaults). For operators and admin endpoints; InvalidInput, NotFound."""
        return await self.overrides.set(user_id, values)

    # Per-user resource limits

    async def check_request(self, user_id: str) -> None:
        n = await self.user_limit(user_id, "requests_per_minute")
        await self._hit(n, 60, "requests", user_id, "too_many_requests", f"more than {n} requests a minute; slow down")

    async def check_session_create(self, user_id: str) -> None:
        n = await self.user_limit(user_id, "sessions_per_hour")
        await self._hit(n, 3600, "sessions", user_id, "too_many_sessions", f"more than {n} new sessions an hour")

    async def check_generation_start(self, user_id: str, session_id: str | None) -> None:
        """Before a message is stored: at most N answers queued or running in all the user's
        sessions, and at most M sessions answering at once (a message into a session that is
        already answering only queues). Counted in the database, so across replicas."""
        check = await self.generation_start_check(user_id, session_id)
        # SQLite: on its cursor, like the send's own statements (services/generations/store.py).
        active = store_sqlite.user_active_sessions if self.db.is_sqlite else store_sql.user_active_sessions
        check(await self.db.run(active, user_id))

    async def generation_start_check(self, user_id: str, session_id: str | None) -> ActiveCheck:
        """`check_generation_start` as a function of the session of each of the user's active
        answers, which the store runs in the transaction that stores the message (one database
        round trip less before the first token); it raises RateLimited there, before anything
        is written."""
        queued = await self.user_limit(user_id, "max_queued_generations")
        running = await self.user_limit(user_id, "max_running_generations")

        def check(active: list[str]) -> None:
            if len(active) >= queued:
                raise RateLimited(
                    f"{len(active)} answers are already queued or running (at most {queued})",
                    code="too_many_queued",
                    limit=queued,
                    retry_after=BUSY_RETRY_AFTER,
                )
            busy = set(active)
            if session_id not in busy and len(busy) >= running:
                raise RateLimited(
                    f"{len(busy)} sessions are already answering (at most {running})",
                    code="too_many_running",
                    limit=running,
                    retry_after=BUSY_RETRY_AFTER,
                )

        return check

    async def open_stream(self, user_id: str) -> StreamLease:
        """A slot for one WebSocket or SSE stream; release it when the stream ends."""
        n = await self.user_limit(user_id, "max_open_streams")
        try:
            slot = await self.slots.acquire(user_id, n)
        except SlotsUnavailable as exc:
            self._unavailable(exc)
            return StreamLease(self.slots, user_id, None)
        if slot is None:
            raise RateLimited(
                f"more than {n} streams open at once", code="too_many_streams", limit=n, retry_after=BUSY_RETRY_AFTER
            )
        return StreamLease(self.slots, user_id, slot)

    async def check_registration(self, client: str) -> None:
        n = self.s.registrations_per_hour_per_client
        await self._hit(
            n,
            3600,
            "registrations",
            client,
            "too_many_registrations",
            f"more than {n} sign-ups an hour from this address",
        )

    # Sign-in limiter: per account from any address, and per address across accounts

    def _login_limits(self, username: str, client: str) -> tuple[tuple[RateLimitItem, str, str], ...]:
        window = self.s.login_failure_window
        return (
            (self._item(self.s.login_max_failures, window), "login-account", account_key(username)),
            (self._item(self.s.login_max_failures_per_client, window), "login-client", client),
        )

    async def login_attempt(self, username: str, client: str) -> None:
        """Counts an attempt before the (slow) password check, so parallel guesses cannot
        all slip under the limit; refused while either count is over it."""
        refused = None
        try:
            for item, kind, ident in self._login_limits(username, client):
                if not await self.rate.hit(item, kind, ident):
                    refused = item, kind, ident
        except StorageError:
            log.warning("limits storage unavailable: sign-ins refused until it is back")
            raise Unavailable(
                "Signing in is unavailable for a moment; try again shortly.", code="limiter_unavailable"
            ) from None
        if refused is not None:
            raise await self._refused(
                *refused, "rate_limited", "Too many failed sign-in attempts; wait before trying again."
            )

    async def login_succeeded(self, username: str, client: str) -> None:
        """A success forgives the account's failures and gives the address its attempt back."""
        (account, kind, ident), (per_client, ckind, cident) = self._login_limits(username, client)
        key = per_client.key_for(ckind, cident)
        try:
            await self.rate.clear(account, kind, ident)
            if await self.storage.get(key) > 0:
                await self.storage.incr(key, per_client.get_expiry(), amount=-1)
        except StorageError as exc:  # the sign-in itself succeeded: do not fail it now
            self._unavailable(exc)

    async def aclose(self) -> None:
        await self.slots.aclose()
        client = getattr(getattr(self.storage, "bridge", None), "storage", None)  # Redis: redis-py's client
        if client is not None:
            await client.aclose()
