"""Chat search and refresh tokens.

Search (services/search.py): on SQLite an FTS5 table `messages_fts` (rowid = messages.pk)
kept by triggers. An answer is indexed once it is no longer queued or running, so the
flushes of a streaming answer do not re-index its growing text. On PostgreSQL a GIN index
on `to_tsvector('simple', content)`, the expression the search query uses.
Refresh tokens: `refresh_tokens`, sha256 hashes only.

Revision ID: 0004_search_refresh
Revises: 0003_tree
Create Date: 2026-12-03
"""

import sqlalchemy as sa

from alembic import op

revision = "0004_search_refresh"
down_revision = "0003_tree"  # chained after the conversation tree (both came the same day)
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
_INDEXED = "new.content != '' AND new.status NOT IN ('queued', 'running')"
SQLITE_UP = [
    "CREATE VIRTUAL TABLE messages_fts USING fts5(content, session_id UNINDEXED, tokenize = 'unicode61')",
    f"""CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages WHEN {_INDEXED} BEGIN
        INSERT INTO messages_fts (rowid, content, session_id) VALUES (new.pk, new.content, new.session_id);
    END""",
    f"""CREATE TRIGGER messages_fts_update AFTER UPDATE OF content, status ON messages WHEN {_INDEXED} BEGIN
        DELETE FROM messages_fts WHERE rowid = old.pk;
        INSERT INTO messages_fts (rowid, content, session_id) VALUES (new.pk, new.content, new.session_id);
    END""",
    """CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
        DELETE FROM messages_fts WHERE rowid = old.pk;
    END""",
    "INSERT INTO messages_fts (rowid, content, session_id) SELECT pk, content, session_id FROM messages "
    "WHERE content != '' AND status NOT IN ('queued', 'running')",
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS messages_fts_insert",
    "DROP TRIGGER IF EXISTS messages_fts_update",
    "DROP TRIGGER IF EXISTS messages_fts_delete",
    "DROP TABLE IF EXISTS messages_fts",
]
PG_UP = ["CREATE INDEX ix_messages_content_fts ON messages USING GIN (to_tsvector('simple', content))"]
PG_DOWN = ["DROP INDEX IF EXISTS ix_messages_content_fts"]


def upgrade() -> None:
    op.create_table(
        "refresh_tokens",
        sa.Column("id", sa.String(26), primary_key=True),
        sa.Column("user_id", sa.String(26), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("family_id", sa.String(26), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_index("ix_refresh_tokens_user_id", "refresh_tokens", ["user_id"])
    op.create_index("ix_refresh_tokens_family_id", "refresh_tokens", ["family_id"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_UP if dialect == "sqlite" else PG_UP if dialect == "postgresql" else []:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_DOWN if dialect == "sqlite" else PG_DOWN if dialect == "postgresql" else []:
        op.execute(statement)
    op.drop_index("ix_refresh_tokens_family_id", "refresh_tokens")
    op.drop_index("ix_refresh_tokens_user_id", "refresh_tokens")
    op.drop_table("refresh_tokens")
