"""Jobs: ``fix_preview``, a "Fix colours" preview not kept (yet).

The job page's "Fix colours" makes a job per change to show its result; the page deleted the ones not kept
when it went, but a page that goes before a preview's request returns (or a phone that drops the page
without telling it) left them in the history for RETAIN_DONE_DAYS. A preview is now marked as such: left out
of the history until "Keep this" keeps it, and deleted by the retention sweep after PREVIEW_RETAIN_HOURS.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("fix_preview", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("fix_preview")
