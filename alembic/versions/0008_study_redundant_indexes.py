"""Study: drop two indexes that a composite one already covers (each new participant wrote them for nothing).

``ix_study_trials_participant_id`` is the leading column of ``uq_study_trials_slot`` (participant_id, part,
position), which also serves a participant's trials in order; ``ix_study_participants_study_id`` is the
leading column of ``uq_study_participants_external`` (study_id, external_id).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("study_trials") as batch:
        batch.drop_index("ix_study_trials_participant_id")
    with op.batch_alter_table("study_participants") as batch:
        batch.drop_index("ix_study_participants_study_id")


def downgrade() -> None:
    with op.batch_alter_table("study_participants") as batch:
        batch.create_index("ix_study_participants_study_id", ["study_id"])
    with op.batch_alter_table("study_trials") as batch:
        batch.create_index("ix_study_trials_participant_id", ["participant_id"])
