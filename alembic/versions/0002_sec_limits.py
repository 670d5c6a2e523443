"""Normalised usernames (unique) and per-user limit overrides.

Existing rows get their NFKC + case-folded username. Rows whose names normalise to the same
value (`Ada` and `ada`) are not merged: the oldest keeps the plain value, each later one
gets `<value>#collision-<id>` (no valid username contains `#`, so nobody can register or
sign in under it by accident) and is logged, for an operator to rename or remove. Until
then such an account cannot sign in by name; its data stays untouched.

Revision ID: 0002_sec_limits
Revises: 0002_ops
Create Date: 2026-12-02
"""

import logging

import sqlalchemy as sa

from alembic import op
from auth.passwords import normalize_username

revision = "0002_sec_limits"
down_revision = "0002_ops"  # chained after main's migrations (reliab-core, openai, apikeys, ops)
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
COLLISION_MARK = "#collision-"


def upgrade() -> None:
    op.add_column("users", sa.Column("username_normalized", sa.String(300), nullable=True))
    op.add_column("users", sa.Column("limits", sa.JSON, nullable=True))
    users = sa.table(
        "users",
        sa.column("id", sa.String),
        sa.column("username", sa.String),
        sa.column("created_at"),
        sa.column("username_normalized", sa.String),
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(users.c.id, users.c.username).order_by(users.c.created_at, users.c.id)).all()
    for key, user_id in fill_values(rows).items():
        conn.execute(users.update().where(users.c.id == user_id).values(username_normalized=key))
    op.create_index("ix_users_username_normalized", "users", ["username_normalized"], unique=True)


def fill_values(rows) -> dict[str, str]:
    """{normalised value: user id} for (id, username) rows, oldest first; later rows that
    collide get a distinct flagged value, and are logged."""
    taken: dict[str, str] = {}
    for user_id, username in rows:
        key = normalize_username(username)
        if key in taken:
            log.warning(
                "username %r (user %s) normalises to the same name as user %s: kept "
                "apart as %r; rename or remove one of them",
                username,
                user_id,
                taken[key],
                key + COLLISION_MARK + user_id,
            )
            key = key + COLLISION_MARK + user_id
        taken[key] = user_id
    return taken


def downgrade() -> None:
    op.drop_index("ix_users_username_normalized", "users")
    op.drop_column("users", "limits")
    op.drop_column("users", "username_normalized")
