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


def test_a_study_and_its_answers_survive_going_back_and_forth(database: str) -> None:
    """The revisions that rebuild a table on SQLite (0004-0007, 0010) dropped the old one with foreign keys
    on: a study's photos and answers were deleted by their ON DELETE CASCADE, or the upgrade failed halfway.
    Now every row is where it was, both ways, on both databases."""
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    rows = [
        "insert into images (id,sha256,data,size_bytes,width,height,mode,format,is_color,filename,created_at)"
        " values ('img1','x',:d,1,1,1,'L','PNG',false,'a.png',:t)",
        "insert into images (id,sha256,data,size_bytes,width,height,mode,format,is_color,filename,created_at)"
        " values ('img2','y',:d,1,1,1,'L','PNG',false,'b.png',:t)",
        "insert into jobs (id,method,params,status,progress,attempts,created_at,input_image_id,"
        "result_image_id) values ('job1','cnn','{}','done',1.0,1,:t,'img1','img2')",
        "insert into studies (id,slug,title,instructions,consent_text,methods,trials_part1,trials_part2,"
        "attention_checks,status,created_at) values ('st1','s','t','i','c','[]',1,1,false,'open',:t)",
        "insert into study_photos (id,study_id,position,name,image_id,gray_image_id)"
        " values ('ph1','st1',0,'p','img1','img1')",
        "insert into study_stimuli (id,study_id,photo_id,condition,job_id,source_image_id,display_image_id)"
        " values ('sm1','st1','ph1','cnn','job1','img2','img2')",
        "insert into study_participants (id,study_id,external_id,source,consented_at)"
        " values ('pa1','st1','e1','anon',:t)",
        "insert into study_trials (id,study_id,participant_id,part,position,stimulus_id,photo_id,condition,"
        "is_attention) values ('tr1','st1','pa1',1,0,'sm1','ph1','cnn',false)",
    ]
    tables = ("images", "jobs", "studies", "study_photos", "study_stimuli", "study_participants")
    tables += ("study_trials",)
    engine = get_engine()

    def counts() -> dict[str, int]:
        with engine.connect() as c:
            return {t: c.execute(text(f"select count(*) from {t}")).scalar_one() for t in tables}

    mig.downgrade("0003")  # the oldest revision whose tables these rows fit, and the first rebuild ahead
    with engine.begin() as c:
        for sql in rows:
            c.execute(text(sql), {"d": b"x", "t": now})
    before = counts()
    assert before == {t: 2 if t == "images" else 1 for t in tables}
    mig.upgrade()
    assert counts() == before
    mig.downgrade("0004")
    assert counts() == before
    mig.upgrade()
    assert counts() == before
