"""User study: studies, photos, stimuli, participants, trials.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "studies",
        sa.Column("id", ID, primary_key=True),
        sa.Column("slug", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("methods", sa.JSON(), nullable=False),
        sa.Column("trials_part1", sa.Integer(), nullable=False),
        sa.Column("trials_part2", sa.Integer(), nullable=False),
        sa.Column("completion_code", sa.String(100), nullable=True),
        sa.Column("redirect_url", sa.String(500), nullable=True),
        sa.Column("attention_checks", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("opened_at", TS, nullable=True),
        sa.Column("closed_at", TS, nullable=True),
        sa.UniqueConstraint("slug", name="uq_studies_slug"),
    )
    op.create_table(
        "study_photos",
        sa.Column("id", ID, primary_key=True),
        sa.Column("study_id", ID, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("image_id", ID, sa.ForeignKey("images.id"), nullable=False),
        sa.Column("gray_image_id", ID, sa.ForeignKey("images.id"), nullable=False),
        sa.UniqueConstraint("study_id", "position", name="uq_study_photos_position"),
    )
    op.create_index("ix_study_photos_study_id", "study_photos", ["study_id"])
    op.create_table(
        "study_stimuli",
        sa.Column("id", ID, primary_key=True),
        sa.Column("study_id", ID, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("photo_id", ID, sa.ForeignKey("study_photos.id", ondelete="CASCADE"), nullable=False),
        sa.Column("condition", sa.String(64), nullable=False),
        sa.Column("job_id", ID, sa.ForeignKey("jobs.id"), nullable=True),
        sa.Column("source_image_id", ID, sa.ForeignKey("images.id"), nullable=True),
        sa.Column("display_image_id", ID, sa.ForeignKey("images.id"), nullable=True),
        sa.UniqueConstraint("study_id", "photo_id", "condition", name="uq_study_stimuli_condition"),
    )
    op.create_index("ix_study_stimuli_study_id", "study_stimuli", ["study_id"])
    op.create_table(
        "study_participants",
        sa.Column("id", ID, primary_key=True),
        sa.Column("study_id", ID, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("external_id", sa.String(128), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("prolific_study_id", sa.String(128), nullable=True),
        sa.Column("prolific_session_id", sa.String(128), nullable=True),
        sa.Column("user_agent", sa.String(300), nullable=True),
        sa.Column("consented_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("completed_at", TS, nullable=True),
        sa.Column("extra", sa.JSON(), nullable=True),
        sa.UniqueConstraint("study_id", "external_id", name="uq_study_participants_external"),
    )
    op.create_index("ix_study_participants_study_id", "study_participants", ["study_id"])
    op.create_table(
        "study_trials",
        sa.Column("id", ID, primary_key=True),
        sa.Column("study_id", ID, sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("participant_id", ID, sa.ForeignKey("study_participants.id", ondelete="CASCADE"), nullable=False),
        sa.Column("part", sa.SmallInteger(), nullable=False),
        sa.Column("position", sa.SmallInteger(), nullable=False),
        sa.Column("stimulus_id", ID, sa.ForeignKey("study_stimuli.id"), nullable=False),
        sa.Column("photo_id", ID, sa.ForeignKey("study_photos.id"), nullable=False),
        sa.Column("condition", sa.String(64), nullable=False),
        sa.Column("is_attention", sa.Boolean(), nullable=False),
        sa.Column("expected", sa.String(16), nullable=True),
        sa.Column("response", sa.String(8), nullable=True),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("response_ms", sa.Integer(), nullable=True),
        sa.Column("shown_at", TS, nullable=True),
        sa.Column("answered_at", TS, nullable=True),
        sa.UniqueConstraint("participant_id", "part", "position", name="uq_study_trials_slot"),
    )
    op.create_index("ix_study_trials_participant_id", "study_trials", ["participant_id"])
    op.create_index("ix_study_trials_study_part_condition", "study_trials", ["study_id", "part", "condition"])


def downgrade() -> None:
    op.drop_table("study_trials")
    op.drop_table("study_participants")
    op.drop_table("study_stimuli")
    op.drop_table("study_photos")
    op.drop_table("studies")
