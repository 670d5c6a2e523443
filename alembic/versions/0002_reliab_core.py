"""messages.seq_reserved: the bound of the chunk seqs a running answer may have sent, so a
crash recovery never gives the done frame a seq a client already holds.

Revision ID: 0002_reliab_core
Revises: 0001
Create Date: 2026-12-02
"""

import sqlalchemy as sa

from alembic import op

revision = "0002_reliab_core"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("seq_reserved", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("seq_reserved")
