"""The Alembic chain works on SQLite and PostgreSQL, both ways, and matches the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend import migrate as mig
from backend.db import get_engine
from backend.models import Base
from backend.study import models as _study_models  # noqa: F401  (its tables join Base.metadata)


def test_upgrade_downgrade_upgrade(database: str) -> None:
    engine = get_engine()
    assert {"images", "jobs", "alembic_version"} <= set(inspect(engine).get_table_names())
    mig.downgrade("base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    mig.upgrade()
    assert {"images", "jobs"} <= set(inspect(engine).get_table_names())


def test_models_match_the_migrations(database: str) -> None:
    with get_engine().connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": False})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], diff
