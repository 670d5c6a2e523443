"""Operations: user roles, disabling, token budgets, and per-generation usage records.

Revision ID: 0002_ops
Revises: 0002_apikeys
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from alembic import op

revision = "0002_ops"
down_revision = "0002_apikeys"  # after the API-keys migration
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("role", sa.String(16), nullable=False, server_default="user"))
        batch.add_column(sa.Column("disabled", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("daily_token_budget", sa.Integer, nullable=True))
        batch.add_column(sa.Column("monthly_token_budget", sa.Integer, nullable=True))
    op.create_table(
        "usage_records",
        sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("generation_id", sa.String(26), nullable=False, unique=True),
        sa.Column("user_id", sa.String(26), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("session_id", sa.String(26), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_usage_user_day", "usage_records", ["user_id", "day"])
    op.create_index("ix_usage_day", "usage_records", ["day"])


def downgrade() -> None:
    op.drop_table("usage_records")
    with op.batch_alter_table("users") as batch:
        for name in ("monthly_token_budget", "daily_token_budget", "disabled", "role"):
            batch.drop_column(name)
