"""Jobs: an iterative job's saved state (``resume_state``, ``resume_step``, ``resume_attempt``).

A worker stopped mid-job (a redeploy, a crash) re-queued an exemplar job from its first iteration, and each
such stop counted as a failed attempt: three redeploys during one long job failed it. The worker now saves
the optimisation's state every RESUME_STATE_INTERVAL seconds; the next attempt goes on from there, and an
attempt that saved progress is not counted against JOB_MAX_ATTEMPTS (``resume_attempt``: the attempt that
saved the state).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("resume_state", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("resume_step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("resume_attempt", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("resume_attempt")
        batch.drop_column("resume_step")
        batch.drop_column("resume_state")
