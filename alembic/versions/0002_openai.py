"""Sessions of the OpenAI-compatible API: a kind, and the per-call options.

`kind` is "chat" for the UI's sessions and "api" for the ones /v1 calls create (kept out
of GET /sessions by default); `options` holds what a /v1 call asked for beyond the session
config (stop sequences, metadata, the input items of a response).

Revision ID: 0002_openai
Revises: 0002_reliab_core
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from alembic import op

revision = "0002_openai"
down_revision = "0002_reliab_core"  # chained after main's migration
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("chat_sessions") as batch:
        batch.add_column(sa.Column("kind", sa.String(16), nullable=False, server_default="chat"))
        batch.add_column(sa.Column("options", sa.JSON, nullable=True))
    op.create_index("ix_chat_sessions_user_kind", "chat_sessions", ["user_id", "kind"])


def downgrade() -> None:
    op.drop_index("ix_chat_sessions_user_kind", "chat_sessions")
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_column("options")
        batch.drop_column("kind")
