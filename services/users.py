"""Users: registration and credential checks (the sign-in limiter is in services/limits/)."""

import asyncio

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from auth.passwords import MAX_USERNAME, PolicyError, check_password, check_username, normalize_username
from auth.security import hash_password, verify_password
from config import Settings
from models.db import User
from services import tables
from services.db import AnyRow, Database
from services.errors import Conflict, Forbidden, InvalidInput, Unauthorized

_users = tables.users


def validate_credentials(username: str, password: str) -> str:
    """The display form of a valid new username; InvalidInput for a bad name or password."""
    try:
        shown = check_username(username)
        check_password(password, shown)
    except PolicyError as exc:
        raise InvalidInput(str(exc), code=exc.code) from None
    return shown


async def create_user(db: AsyncSession, username: str, password: str, role: str = "user") -> User:
    username = validate_credentials(username, password)
    key = normalize_username(username)
    taken = Conflict(f"username {username!r} is taken", code="username_taken")
    # A cheap early answer; the unique index on the normalised name is what guarantees it.
    if await db.scalar(select(User.id).where(User.username_normalized == key)) is not None:
        raise taken
    # argon2 is deliberately slow: keep it off the event loop.
    password_hash = await asyncio.to_thread(hash_password, password)
    user = User(username=username, username_normalized=key, password_hash=password_hash, role=role)
    db.add(user)
    try:
        await db.commit()
    except IntegrityError:
        await db.rollback()
        raise taken from None  # the unique index: another sign-up took the name meanwhile
    return user


async def authenticate(db: AsyncSession, username: str, password: str) -> User:
    key = normalize_username(username)
    user = None
    if len(key) <= MAX_USERNAME:  # no account has a longer name: skip the lookup, not the hash
        user = (await db.scalars(select(User).where(User.username_normalized == key))).first()
    ok = await asyncio.to_thread(verify_password, password, user.password_hash if user else None)
    if not ok or user is None:
        raise Unauthorized("Incorrect username or password.", code="invalid_credentials")
    if user.disabled:  # said only to whoever knows the password
        raise Forbidden("This account is disabled.", code="user_disabled")
    return user


_by_id = select(_users.c.id, _users.c.username, _users.c.role, _users.c.disabled).where(_users.c.id == bindparam("uid"))


def _user_row(conn: Connection, user_id: str) -> AnyRow | None:
    return conn.execute(_by_id, {"uid": user_id}).first()


async def get_user(db: Database, user_id: str) -> AnyRow:
    """The token's user (id, username, role), or 401 (403 when disabled). Runs for every
    request and socket, so it is one Core statement (Database.run), not an ORM session."""
    user = await db.run(_user_row, user_id)
    if user is None:
        raise Unauthorized("The token's user no longer exists.", code="invalid_token")
    if user.disabled:
        raise Forbidden("This account is disabled.", code="user_disabled")
    return user


async def seed_initial_user(db: Database, settings: Settings) -> None:
    """Creates INITIAL_USER once, if set and missing (for deployments without sign-up), as
    an admin: the account that administers the others."""
    if not settings.initial_user or not settings.initial_password:
        return
    async with db.sessionmaker() as session:
        key = normalize_username(settings.initial_user)
        exists = await session.scalar(select(User).where(User.username_normalized == key))
        if exists is None:
            try:
                await create_user(session, settings.initial_user, settings.initial_password, role="admin")
            except Conflict:  # another replica seeded it first
                pass
