"""Images and colorization jobs.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("is_color", sa.Boolean(), nullable=False),
        sa.Column("filename", sa.String(255), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_index("ix_images_sha256", "images", ["sha256"])
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("progress_detail", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(255), nullable=True),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("enqueued_at", TS, nullable=True),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("run_seconds", sa.Float(), nullable=True),
        sa.Column("input_image_id", sa.String(32), sa.ForeignKey("images.id"), nullable=False),
        sa.Column("reference_image_id", sa.String(32), sa.ForeignKey("images.id"), nullable=True),
        sa.Column("result_image_id", sa.String(32), sa.ForeignKey("images.id"), nullable=True),
        sa.Column("preview_png", sa.LargeBinary(), nullable=True),
        sa.Column("preview_at", TS, nullable=True),
    )
    op.create_index("ix_jobs_method", "jobs", ["method"])
    op.create_index("ix_jobs_status", "jobs", ["status"])
    op.create_index("ix_jobs_client", "jobs", ["client"])
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])


def downgrade() -> None:
    op.drop_table("jobs")
    op.drop_table("images")
