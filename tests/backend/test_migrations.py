"""The Alembic chain works on SQLite and PostgreSQL, both ways, and matches the ORM models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text

from backend import migrate as mig
from backend.db import get_engine
from backend.models import Base
from backend.study import models as _study_models  # noqa: F401  (its tables join Base.metadata)
from tests.backend.test_api import png


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


def test_going_back_before_webhooks_keeps_a_batch_and_its_jobs(client: TestClient) -> None:
    """0011's downgrade drops its columns in place: rebuilding ``batches``, which jobs point at, fails on
    SQLite with foreign keys on (halfway, leaving the database between two revisions)."""
    photos = [("images", (f"{i}.png", png(), "image/png")) for i in range(2)]
    r = client.post("/batches", files=photos, data={"method": "cnn", "webhook": "http://127.0.0.1:9/hook"})
    assert r.status_code == 202, r.text
    engine = get_engine()
    with engine.connect() as conn:
        jobs = conn.execute(text("SELECT id, batch_id FROM jobs ORDER BY id")).all()
    assert len(jobs) == 2 and all(batch_id for _, batch_id in jobs)
    mig.downgrade("0010")
    inspector = inspect(engine)
    assert "webhook_deliveries" not in inspector.get_table_names()
    for table in ("jobs", "batches"):
        assert "webhook_url" not in {c["name"] for c in inspector.get_columns(table)}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id, batch_id FROM jobs ORDER BY id")).all() == jobs
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0010"
    mig.upgrade()
    assert "webhook_url" in {c["name"] for c in inspect(engine).get_columns("batches")}
