"""Jobs: ``rerun_of``, the job a re-run was made from (the job page links back to it).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("rerun_of", sa.String(32), nullable=True))
        batch.create_index("ix_jobs_rerun_of", ["rerun_of"])
        # Deleting the first job (DELETE, retention) keeps its re-runs; they just lose the link.
        batch.create_foreign_key("fk_jobs_rerun_of_jobs", "jobs", ["rerun_of"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("fk_jobs_rerun_of_jobs", type_="foreignkey")
        batch.drop_index("ix_jobs_rerun_of")
        batch.drop_column("rerun_of")
