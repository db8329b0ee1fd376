"""One anonymous participant per browser and study: two tabs consenting at the same instant made two.

Earlier duplicates keep their answers; all but the first of a browser lose the browser link (they are no
longer resumed by it), so that the unique index can be made.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

ANONYMOUS = "source = 'anonymous' AND NOT is_preview"


def upgrade() -> None:
    op.execute(
        sa.text(
            f"""
            UPDATE study_participants SET browser = NULL
            WHERE {ANONYMOUS} AND browser IS NOT NULL AND id NOT IN (
                SELECT first_id FROM (
                    SELECT MIN(id) AS first_id FROM study_participants
                    WHERE {ANONYMOUS} AND browser IS NOT NULL
                    GROUP BY study_id, browser
                ) AS kept
            )
            """
        )
    )
    op.create_index(
        "uq_study_participants_anonymous_browser",
        "study_participants",
        ["study_id", "browser"],
        unique=True,
        postgresql_where=sa.text(ANONYMOUS),
        sqlite_where=sa.text(ANONYMOUS),
    )


def downgrade() -> None:
    op.drop_index("uq_study_participants_anonymous_browser", table_name="study_participants")
