"""Retention: `colorlab sweep` (the same clean-up the worker's sweeper runs) deletes expired jobs and the
images only they used, keeps everything else, and says what it freed."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from tests.conftest import ROOT, child_env, migrate, photo_bytes

pytestmark = pytest.mark.slow


def test_sweep_deletes_expired_jobs_and_their_images_only(tmp_path: Path) -> None:
    from backend import job_lifecycle as lifecycle
    from backend.config import get_settings
    from backend.db import session_scope
    from backend.images import decode
    from backend.models import Image, Job, JobStatus, utcnow
    from backend.stored_images import Upload
    from backend.study import builder
    from tests.backend.study.conftest import finish_jobs, photo_files

    migrate()
    settings = get_settings()
    now = utcnow()

    def upload(name: str) -> Upload:
        data = photo_bytes(name)
        return Upload(data=data, decoded=decode(data, max_pixels=10**8), filename="x.jpg")

    def job(session, image: Upload, status: JobStatus, age: timedelta) -> str:  # type: ignore[no-untyped-def]
        created = lifecycle.create(session, lifecycle.NewJob("cnn", {}, image=image))
        session.flush()
        session.execute(update(Job).where(Job.id == created.id).values(status=status, finished_at=now - age))
        return created.id

    with session_scope() as s:
        shared = upload("001_")
        expired = [
            job(s, shared, JobStatus.done, timedelta(days=31)),
            job(s, upload("002_"), JobStatus.failed, timedelta(days=2)),
            job(s, upload("003_"), JobStatus.cancelled, timedelta(days=1, hours=1)),
        ]
        kept = [
            job(s, shared, JobStatus.done, timedelta(days=29)),  # shares its input with an expired job
            job(s, upload("006_"), JobStatus.failed, timedelta(hours=20)),
            job(s, upload("007_"), JobStatus.queued, timedelta(days=90)),  # never finished: not touched
        ]
        spec = builder.StudySpec(title="t", methods=["cnn"], trials_part1=1, trials_part2=1)
        study = builder.create_study(s, settings, spec, photo_files(2), check_available=False)
        finish_jobs(s, study)
        s.flush()
        stimuli = list(
            s.scalars(select(Job.id).where(Job.status == JobStatus.done, Job.id.not_in(kept + expired)))
        )
        s.execute(update(Job).where(Job.id.in_(stimuli)).values(finished_at=now - timedelta(days=400)))
        images_before = s.scalar(select(func.count()).select_from(Image))

    out = subprocess.run(
        [sys.executable, "-m", "backend.cli", "sweep"],
        env=child_env(DATA_DIR=settings.data_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    freed = re.search(r"retention freed (\d+) job\(s\), (\d+) image\(s\), ([\d.]+) MB", out.stdout)
    assert freed and freed.group(1) == "3" and freed.group(2) == "2", out.stdout  # the shared input stays
    assert float(freed.group(3)) > 0

    with session_scope() as s:
        remaining = set(s.scalars(select(Job.id)))
        assert not remaining & set(expired)
        assert set(kept) | set(stimuli) <= remaining
        assert s.scalar(select(func.count()).select_from(Image)) == images_before - 2
        assert s.get(Image, shared_id(s, kept[0])) is not None


def shared_id(session, job_id: str) -> str:  # type: ignore[no-untyped-def]
    from backend.models import Job

    return session.get(Job, job_id).input_image_id
