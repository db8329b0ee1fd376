"""Jobs: ``reference_name``, the reference file's name as this job's uploader gave it.

Identical uploads share one stored image, whose ``filename`` is the first uploader's: shown to someone
else, it told them another person's file name. A job now keeps its reference's name, as ``source_name``
keeps its photo's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("reference_name", sa.String(255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("reference_name")
