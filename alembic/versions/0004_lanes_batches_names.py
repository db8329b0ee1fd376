"""Batches of photos, and the original file name of each job's upload.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("rejected", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_batches_client", "batches", ["client"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("batch_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("source_name", sa.String(255), nullable=True))
        batch.create_index("ix_jobs_batch_id", ["batch_id"])
        batch.create_foreign_key("fk_jobs_batch_id_batches", "batches", ["batch_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_batch_id_batches", type_="foreignkey")
        batch.drop_index("ix_jobs_batch_id")
        batch.drop_column("source_name")
        batch.drop_column("batch_id")
    op.drop_index("ix_batches_client", "batches")
    op.drop_table("batches")
