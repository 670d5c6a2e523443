"""Account administration: list users, disable and re-enable them, roles and budgets.

Used by the admin REST routes (api/admin.py) and the CLI (manage.py). A change clears
the caller's policy cache for that user; the other processes see it within USER_POLICY_TTL
(requests that look the user up, every route but POST /chat, see it at once)."""

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Connection, func, select, update

from auth.passwords import normalize_username
from services import tables
from services.db import AnyRow, Database
from services.errors import Conflict, InvalidInput, NotFound
from services.json_types import JSONObject

ROLES = ("user", "admin")
FIELDS = ("role", "disabled", "daily_token_budget", "monthly_token_budget")
users_t = tables.users
_columns = (
    users_t.c.id,
    users_t.c.username,
    users_t.c.role,
    users_t.c.disabled,
    users_t.c.daily_token_budget,
    users_t.c.monthly_token_budget,
    users_t.c.created_at,
)


def user_view(row: AnyRow) -> JSONObject:
    return {
        "id": row.id,
        "username": row.username,
        "role": row.role,
        "disabled": bool(row.disabled),
        "daily_token_budget": row.daily_token_budget,
        "monthly_token_budget": row.monthly_token_budget,
        "created_at": row.created_at,
    }


def _list(conn: Connection, limit: int, offset: int) -> tuple[int, Sequence[AnyRow]]:
    total: int = conn.execute(select(func.count()).select_from(users_t)).scalar_one()
    rows = conn.execute(
        select(*_columns).order_by(users_t.c.created_at, users_t.c.id).limit(limit).offset(offset)
    ).all()
    return total, rows


def _update(conn: Connection, where: ColumnElement[bool], changes: JSONObject) -> AnyRow | None:
    if changes:
        conn.execute(update(users_t).where(where).values(**changes))
    return conn.execute(select(*_columns).where(where)).first()


async def list_users(db: Database, limit: int, offset: int) -> JSONObject:
    total, rows = await db.run(_list, limit, offset)
    return {"total": total, "limit": limit, "offset": offset, "users": [user_view(r) for r in rows]}


async def update_user(
    db: Database,
    changes: JSONObject,
    *,
    user_id: str | None = None,
    username: str | None = None,
    acting: str | None = None,
) -> JSONObject:
    """Applies `changes` (a subset of FIELDS) to the user given by id or username. The
    `acting` admin cannot lock themselves out (disable or demote their own account)."""
    if acting is not None and acting == user_id and (changes.get("disabled") or changes.get("role") == "user"):
        raise Conflict("An admin cannot disable or demote their own account.", code="cannot_change_self")
    unknown = set(changes) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"unknown fields: {', '.join(sorted(unknown))}", code="invalid_field")
    if "role" in changes and changes["role"] not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}", code="invalid_role")
    if user_id is not None:
        where = users_t.c.id == user_id
    elif username is not None:
        where = users_t.c.username_normalized == normalize_username(username)
    else:
        raise TypeError("update_user needs a user_id or a username")
    row = await db.run(_update, where, changes)
    if row is None:
        raise NotFound("user not found", code="user_not_found")
    return user_view(row)
