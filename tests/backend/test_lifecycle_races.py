"""The job lifecycle where two actors meet (the concurrency audit): a worker the sweeper took a job from
changes it no more, retention goes past what it may not delete instead of stopping at it, and a deletion
whose images got a new user at the DELETE itself (PostgreSQL) is tried again, not a 500 (SQLite and
PostgreSQL)."""

from __future__ import annotations

import io
from datetime import timedelta

from PIL import Image
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.models import Batch, Job, JobStatus, utcnow
from tests.conftest import keep_for_a_study


def png(value: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (64, 48), value).save(buf, format="PNG")
    return buf.getvalue()


def upload(client, value: int) -> str:  # type: ignore[no-untyped-def]
    r = client.post("/colorize", files={"image": ("a.png", png(value), "image/png")}, data={"method": "cnn"})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_a_worker_that_lost_its_job_changes_it_no_more(client) -> None:  # type: ignore[no-untyped-def]
    job_id = upload(client, 60)
    settings = get_settings()
    with session_scope() as s:
        assert lifecycle.claim(s, job_id, worker="worker-a", stale_after=settings.stale_after) is not None
        s.commit()
    with session_scope() as s:  # the sweeper found A silent; B claimed the job
        s.execute(update(Job).where(Job.id == job_id).values(worker="worker-b"))
        s.commit()
    with session_scope() as s:
        assert not lifecycle.record_progress(s, job_id, fraction=0.5, detail={}, worker="worker-a")
        assert not lifecycle.retry(s, job_id, "A's attempt failed", worker="worker-a")
        lifecycle.fail(s, job_id, "A gave up", worker="worker-a")
        s.commit()
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.status == JobStatus.running and job.worker == "worker-b"
        assert job.error is None and (job.progress or 0.0) == 0.0
        assert lifecycle.record_progress(s, job_id, fraction=0.5, detail={}, worker="worker-b")  # B's is


def test_retention_goes_past_a_studys_colorizations(client) -> None:  # type: ignore[no-untyped-def]
    stimuli = [upload(client, 70 + n) for n in range(3)]
    ordinary = [upload(client, 80 + n) for n in range(2)]
    for job_id in stimuli:
        keep_for_a_study(job_id)
    long_ago = utcnow() - timedelta(days=get_settings().retain_done_days + 1)
    with session_scope() as s:  # every one finished long ago; the study's sort first by id or not
        s.execute(update(Job).values(status=JobStatus.done, finished_at=long_ago))
        s.commit()
        lifecycle.purge_expired(s, get_settings(), batch=2)  # pages smaller than the study's jobs
    with session_scope() as s:
        left = set(s.scalars(select(Job.id)))
    assert left == set(stimuli) and not left & set(ordinary), left  # the ordinary ones went


def test_an_empty_old_batch_is_forgotten_by_retention(client) -> None:  # type: ignore[no-untyped-def]
    files = [("images", (f"{n}.png", png(90 + n), "image/png")) for n in range(2)]
    batch_id = client.post("/batches", files=files, data={"method": "cnn"}).json()["id"]
    for item in client.get(f"/batches/{batch_id}").json()["items"]:
        assert client.delete(f"/jobs/{item['job_id']}").status_code == 204
    assert client.get(f"/batches/{batch_id}").status_code == 200  # its page says its photos were deleted
    with session_scope() as s:
        lifecycle.purge_expired(s, get_settings())
        assert s.get(Batch, batch_id) is not None  # not yet: as young as a finished job kept
        old = utcnow() - timedelta(days=get_settings().retain_done_days + 1)
        s.execute(update(Batch).where(Batch.id == batch_id).values(created_at=old))
        s.commit()
        lifecycle.purge_expired(s, get_settings())
        assert s.scalar(select(func.count()).select_from(Batch).where(Batch.id == batch_id)) == 0


def test_a_deletion_refused_at_its_delete_statement_is_tried_again(client) -> None:  # type: ignore[no-untyped-def]
    """PostgreSQL raises the foreign-key error at the DELETE (an identical upload took the photo meanwhile),
    not at the commit; the deletion runs again instead of answering 500."""
    job_id = upload(client, 100)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.failed))
        s.commit()
        tries: list[int] = []

        def deletion() -> lifecycle.Freed | None:
            tries.append(1)
            if len(tries) == 1:
                raise IntegrityError("DELETE FROM images", None, Exception("still referenced"))
            return lifecycle.delete_jobs(s, [job_id])

        freed = lifecycle.commit_deletion(s, deletion, "delete job")
    assert len(tries) == 2 and freed is not None and freed.jobs == 1
    assert client.get(f"/jobs/{job_id}").status_code == 404


def test_a_preview_kept_while_retention_deletes_it_stays_and_a_late_keep_is_404(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    first = upload(client, 110)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == first).values(status=JobStatus.done, finished_at=utcnow()))
        s.commit()
    made = client.post(f"/jobs/{first}/rerun", data={"fix_preview": "true"})
    assert made.status_code == 202, made.text
    preview = made.json()["id"]
    made_long_ago = utcnow() - timedelta(hours=get_settings().preview_retain_hours + 1)
    with session_scope() as s:
        s.execute(
            update(Job).where(Job.id == preview).values(status=JobStatus.done, created_at=made_long_ago)
        )
        s.commit()
    real = lifecycle.delete_jobs

    def kept_meanwhile(session, job_ids, **kwargs):  # type: ignore[no-untyped-def]
        assert client.post(f"/jobs/{preview}/keep").status_code == 200  # between retention's pick and delete
        return real(session, job_ids, **kwargs)

    monkeypatch.setattr(lifecycle, "delete_jobs", kept_meanwhile)
    with session_scope() as s:
        lifecycle.purge_expired(s, get_settings())
    monkeypatch.setattr(lifecycle, "delete_jobs", real)
    kept = client.get(f"/jobs/{preview}")
    assert kept.status_code == 200 and kept.json()["fix_preview"] is False  # the person's choice stands

    gone = client.post(f"/jobs/{first}/rerun", data={"fix_preview": "true"}).json()["id"]
    with session_scope() as s:
        job = s.get(Job, gone)
        assert job is not None
        s.execute(update(Job).where(Job.id == gone).values(status=JobStatus.failed))
        s.commit()
        lifecycle.delete_jobs(s, [gone])
        s.commit()
    assert client.post(f"/jobs/{gone}/keep").status_code == 404  # deleted first: gone, not a 500
