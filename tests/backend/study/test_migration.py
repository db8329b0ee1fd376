"""Migration 0002 (user study) on SQLite and PostgreSQL: up, down to 0001, up again; the ORM matches it."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from backend import migrate as mig
from backend.db import get_engine
from backend.models import Base
from backend.study import models as study_models

TABLES = {"studies", "study_photos", "study_stimuli", "study_participants", "study_trials"}


def test_0002_up_down_up_and_matches_models(database: str) -> None:
    assert study_models.Study.__table__ is not None
    engine = get_engine()
    assert set(inspect(engine).get_table_names()) >= TABLES
    mig.downgrade("0001")
    names = set(inspect(engine).get_table_names())
    assert not TABLES & names and {"images", "jobs"} <= names
    mig.upgrade()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": False}), Base.metadata)
    assert diff == [], diff
