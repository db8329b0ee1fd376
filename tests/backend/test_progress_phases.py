"""An iterative job's "preparing" phase says what it is doing: a new phase message is written at once, even
within the progress writes' throttle interval (real database, the worker's ProgressReporter)."""

from __future__ import annotations

from sqlalchemy import update

from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.images import decode
from backend.models import Job, JobStatus, utcnow
from backend.stored_images import Upload
from tests.conftest import photo_bytes
from worker.colorizers.base import Progress
from worker.runner import ProgressReporter, Runner


def detail(job_id: str) -> dict:
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        return dict(job.progress_detail or {})


def test_phase_changes_are_never_throttled_away(database: str) -> None:
    data = photo_bytes()
    with session_scope() as s:
        upload = Upload(data=data, decoded=decode(data, max_pixels=10**8), filename="a.jpg")
        job_id = lifecycle.create(s, lifecycle.NewJob("cnn", {}, image=upload)).id
        s.execute(update(Job).where(Job.id == job_id).values(status=JobStatus.running, started_at=utcnow()))
    reporter = ProgressReporter(Runner(get_settings()), job_id)
    reporter(Progress(step=0, total=0, message="preparing: loading the network"))
    assert detail(job_id)["message"] == "preparing: loading the network"
    reporter(Progress(step=0, total=0, message="preparing: decoding the photo and the reference"))
    assert detail(job_id)["message"] == "preparing: decoding the photo and the reference"
    reporter(Progress(step=1, total=100, message="iteration 1/100"))  # within 0.5 s: throttled
    assert detail(job_id)["message"] == "preparing: decoding the photo and the reference"
    reporter(Progress(step=100, total=100, message="iteration 100/100"))  # the last one always lands
    assert detail(job_id) | {"losses": {}} == {
        "step": 100,
        "total": 100,
        "message": "iteration 100/100",
        "losses": {},
    }
