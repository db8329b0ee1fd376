"""Study trust: participant secrets and status, balanced-design counter, text versions, admin sessions,
shared login throttle.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("studies") as batch:
        batch.add_column(sa.Column("participant_seq", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("texts_version", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("study_participants") as batch:
        batch.add_column(sa.Column("secret_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("browser", sa.String(64), nullable=True))
        batch.add_column(sa.Column("receipt", sa.String(16), nullable=True))
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default="active"))
        batch.add_column(sa.Column("is_preview", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("texts_version", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.create_index("ix_study_participants_browser", ["study_id", "browser"])
    op.create_table(
        "study_text_versions",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("study_id", sa.String(32), sa.ForeignKey("studies.id", ondelete="CASCADE"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("consent_text", sa.Text(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("study_id", "version", name="uq_study_text_versions"),
    )
    op.create_index("ix_study_text_versions_study_id", "study_text_versions", ["study_id"])
    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
    )
    op.create_table(
        "login_throttle",
        sa.Column("client", sa.String(128), primary_key=True),
        sa.Column("window_start", TS, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("login_throttle")
    op.drop_table("admin_sessions")
    op.drop_index("ix_study_text_versions_study_id", table_name="study_text_versions")
    op.drop_table("study_text_versions")
    with op.batch_alter_table("study_participants") as batch:
        batch.drop_index("ix_study_participants_browser")
        for column in ("seq", "texts_version", "is_preview", "status", "receipt", "browser", "secret_hash"):
            batch.drop_column(column)
    with op.batch_alter_table("studies") as batch:
        batch.drop_column("texts_version")
        batch.drop_column("participant_seq")
