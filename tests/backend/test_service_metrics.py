"""GET /metrics: what a monitoring system reads, from the database every process shares (SQLite and
PostgreSQL), in Prometheus's text format; a token when one is set, absent in production without one."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.db import session_scope
from backend.models import Job, JobStatus, utcnow
from backend.service_metrics import CONTENT_TYPE
from tests.backend.test_runner import new_job
from tests.conftest import reset_caches

SAMPLE = re.compile(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$")


def scraped(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """The samples of an exposition, by (name, labels); every line is a comment or a well-formed sample."""
    samples = {}
    for line in text.splitlines():
        if line.startswith("# "):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        found = SAMPLE.match(line)
        assert found, line
        labels = frozenset(re.findall(r'([a-z_]+)="([^"]*)"', found[2] or ""))
        samples[(found[1], labels)] = float(found[3])
    return samples


def value(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples[(name, frozenset(labels.items()))]


def set_job(job_id: str, **values: object) -> None:
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values))


def test_metrics_read_the_queue_and_the_last_hour_from_the_database(client: TestClient) -> None:
    now = utcnow()
    set_job(new_job("cnn"), created_at=now - timedelta(minutes=2))  # waiting 2 min in the fast lane
    set_job(new_job("exemplar", {"iterations": 5}), created_at=now - timedelta(minutes=10))
    quiet = new_job("unet-bins")  # running, but its worker stopped reporting 10 min ago
    set_job(quiet, status=JobStatus.running, started_at=now, heartbeat_at=now - timedelta(minutes=10))
    uploaded = now - timedelta(minutes=5)
    for seconds in (1.0, 2.0, 3.0):  # done in the last hour, started 30 s after their upload
        done = dict(status=JobStatus.done, run_seconds=seconds, finished_at=now)
        set_job(new_job("cnn"), created_at=uploaded, started_at=uploaded + timedelta(seconds=30), **done)
    set_job(new_job("gan"), status=JobStatus.failed, finished_at=now - timedelta(minutes=1))
    set_job(new_job("cnn"), status=JobStatus.done, run_seconds=99.0, finished_at=now - timedelta(hours=2))

    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"] == CONTENT_TYPE
    assert r.headers["cache-control"] == "no-store"
    m = scraped(r.text)
    assert value(m, "colorlab_database_up") == 1
    assert value(m, "colorlab_jobs", status="queued") == 2 and value(m, "colorlab_jobs", status="done") == 4
    assert value(m, "colorlab_jobs", status="cancelled") == 0  # every status, even without jobs
    assert value(m, "colorlab_queued_jobs", lane="fast") == 1
    assert value(m, "colorlab_queued_jobs", lane="iterative") == 1
    assert value(m, "colorlab_running_jobs", lane="fast") == 1
    assert 590 <= value(m, "colorlab_oldest_queued_job_seconds", lane="iterative") <= 700
    assert 110 <= value(m, "colorlab_oldest_queued_job_seconds", lane="fast") <= 200
    assert value(m, "colorlab_quiet_running_jobs") == 1
    assert (
        value(m, "colorlab_recent_finished_jobs", method="cnn", status="done") == 3
    )  # not the 2-hour-old one
    assert value(m, "colorlab_recent_finished_jobs", method="gan", status="failed") == 1
    assert value(m, "colorlab_recent_run_seconds", method="cnn", quantile="0.5") == 2.0
    assert value(m, "colorlab_recent_run_seconds", method="cnn", quantile="0.95") == pytest.approx(2.9)
    assert value(m, "colorlab_recent_wait_seconds", lane="fast", quantile="0.5") == pytest.approx(30.0)


def test_metrics_need_the_token_when_one_is_set_and_are_off_in_production_without(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("METRICS_TOKEN", "s3cret-token")
    reset_caches()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret-token"}):
        r = client.get("/metrics", headers=headers)
        assert r.status_code == 401 and "METRICS_TOKEN" in r.json()["detail"]
        assert r.headers["www-authenticate"] == "Bearer"
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    monkeypatch.setenv("METRICS_TOKEN", "")
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("ADMIN_PASSWORD", "a-strong-admin-password")
    monkeypatch.setenv("SECRET_KEY", "k" * 40)
    reset_caches()
    assert client.get("/metrics").status_code == 404


def test_metrics_say_when_the_database_is_away(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from backend.main import create_app

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:9/nowhere?connect_timeout=1")
    reset_caches()
    with TestClient(create_app()) as c:
        r = c.get("/metrics")
    assert r.status_code == 200 and value(scraped(r.text), "colorlab_database_up") == 0


def test_a_scrape_takes_no_connection_of_the_study_participants_pool(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-statement pool is sized for the STUDY_THREADS threads alone (no overflow): a scrape from a
    web thread that took one of its connections would make a participant's request wait for it."""
    from backend import db

    class StudyPool:  # in place of the lru_cache'd factory (the fixtures clear its cache afterwards)
        def __call__(self, url: str) -> None:
            raise AssertionError("GET /metrics used the study threads' database pool")

        def cache_clear(self) -> None:
            pass

    monkeypatch.setattr(db, "_statement_sessionmaker_for", StudyPool())
    r = client.get("/metrics")
    assert r.status_code == 200 and value(scraped(r.text), "colorlab_database_up") == 1
