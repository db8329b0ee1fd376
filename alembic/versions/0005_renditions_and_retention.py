"""Images: renditions made once at upload (served instead of decoding the upload again).

Retention needs no schema: it deletes expired jobs and the images nothing references any more.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.add_column(sa.Column("gray_png", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("color_png", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("thumb_jpeg", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("images") as batch:
        batch.drop_column("thumb_jpeg")
        batch.drop_column("color_png")
        batch.drop_column("gray_png")
