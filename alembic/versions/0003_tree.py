"""A conversation is a tree: every message points at the one it follows, and each session
at the last message of the branch it shows.

Existing sessions were linear, so each message's parent is the message stored just before
it in the same session (by `pk`, the submission order), and a session's active leaf is its
last message: the prompt and the view of every old session stay exactly what they were.

Revision ID: 0003_tree
Revises: 0002_sec_limits
Create Date: 2026-12-03
"""

import sqlalchemy as sa

from alembic import op

revision = "0003_tree"
down_revision = "0002_sec_limits"
branch_labels = None
depends_on = None

# Correlated subqueries, not window functions: the same statement on SQLite and PostgreSQL,
# each lookup one step of the (session_id, pk) index.
BACKFILL_PARENTS = """
UPDATE messages SET parent_id = (
    SELECT prev.id FROM messages AS prev
    WHERE prev.session_id = messages.session_id AND prev.pk < messages.pk
    ORDER BY prev.pk DESC LIMIT 1)
"""
BACKFILL_LEAVES = """
UPDATE chat_sessions SET active_leaf_id = (
    SELECT lm.id FROM messages AS lm
    WHERE lm.session_id = chat_sessions.id
    ORDER BY lm.pk DESC LIMIT 1)
"""


def upgrade() -> None:
    op.add_column("messages", sa.Column("parent_id", sa.String(26), nullable=True))
    op.add_column("chat_sessions", sa.Column("active_leaf_id", sa.String(26), nullable=True))
    op.execute(BACKFILL_PARENTS)
    op.execute(BACKFILL_LEAVES)
    op.create_index("ix_messages_parent_id", "messages", ["parent_id"])


def downgrade() -> None:
    op.drop_index("ix_messages_parent_id", "messages")
    with op.batch_alter_table("chat_sessions") as batch:
        batch.drop_column("active_leaf_id")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("parent_id")
