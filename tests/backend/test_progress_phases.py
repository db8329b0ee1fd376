"""An iterative job's "preparing" phase says what it is doing: a new phase message is written at once, even
within the progress writes' throttle interval (real database, the worker's ProgressReporter); its time
estimates extrapolate from the iterations' own pace, not from the time spent preparing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlalchemy import update

from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.estimates import OWN_PACE_STEPS, Estimator
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
        runner = Runner(get_settings())  # the job is this worker's, as its claim makes it
        running = {"status": JobStatus.running, "started_at": utcnow(), "worker": runner.hostname}
        s.execute(update(Job).where(Job.id == job_id).values(**running))
    reporter = ProgressReporter(runner, job_id)
    reporter(Progress(step=0, total=0, message="preparing: loading the network"))
    assert detail(job_id)["message"] == "preparing: loading the network"
    reporter(Progress(step=0, total=0, message="preparing: decoding the photo and the reference"))
    assert detail(job_id)["message"] == "preparing: decoding the photo and the reference"
    reporter(Progress(step=1, total=100, message="iteration 1/100"))  # within 0.5 s: throttled
    assert detail(job_id)["message"] == "preparing: decoding the photo and the reference"
    reporter(Progress(step=100, total=100, message="iteration 100/100"))  # the last one always lands
    assert detail(job_id) | {"losses": {}, "iterating_seconds": 0} == {
        "step": 100,
        "total": 100,
        "message": "iteration 100/100",
        "losses": {},
        "iterating_seconds": 0,
    }


def _running_exemplar(params: dict) -> str:
    data = photo_bytes()
    with session_scope() as s:
        upload = Upload(data=data, decoded=decode(data, max_pixels=10**8), filename="a.jpg")
        job_id = lifecycle.create(s, lifecycle.NewJob("exemplar", params, image=upload, reference=upload)).id
        running = {
            "status": JobStatus.running,
            "started_at": utcnow(),
            "worker": Runner(get_settings()).hostname,
        }
        s.execute(update(Job).where(Job.id == job_id).values(**running))  # this thread's worker's, as claimed
    return job_id


def test_time_left_follows_the_iterations_not_the_preparing(database: str) -> None:
    job_id = _running_exemplar({"iterations": 20, "size": 256})
    reporter = ProgressReporter(Runner(get_settings()), job_id)
    reporter(Progress(step=0, total=0, message="preparing: loading the network"))
    time.sleep(1.5)  # preparing takes a while ...
    reporter(Progress(step=0, total=20, message="preparing: computing the targets"))
    time.sleep(0.6)  # ... then one iteration takes 0.6 s (past the 0.5 s write throttle)
    reporter(Progress(step=1, total=20, message="iteration 1/20"))
    first = detail(job_id)
    assert first["step"] == 1 and 0.55 < first["iterating_seconds"] < 1.0
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        left = Estimator(s).remaining_seconds(job, utcnow())
    # 19 steps at ~0.6 s, where elapsed / step would have said 19 × 2.1 s or more
    assert 19 * 0.55 < left < 19 * 1.0


def test_expected_time_is_preparing_plus_iterations(database: str) -> None:
    for iterations in (10, 40):  # two finished runs: 5 s preparing + 0.5 s an iteration at 256 px
        job_id = _running_exemplar({"iterations": iterations, "size": 256})
        detail = {"step": iterations, "total": iterations, "iterating_seconds": 0.5 * iterations}
        with session_scope() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(
                    status=JobStatus.done,
                    progress_detail=detail,
                    run_seconds=5 + 0.5 * iterations,
                    finished_at=utcnow() + timedelta(seconds=iterations),
                )
            )
    with session_scope() as s:
        estimate = Estimator(s)
        assert estimate.run_seconds("exemplar", {"iterations": 20, "size": 256}) == 5 + 0.5 * 20
        assert estimate.run_seconds("exemplar", {"iterations": 20, "size": 128}) == 5 + 0.5 / 4 * 20


def test_a_slow_first_iteration_is_not_taken_for_the_pace(database: str) -> None:
    """The first iterations are the slowest (L-BFGS's first line search): a job that has done one step in
    5 s is not told 19 × 5 s are left while the method's usual pace is 0.6 s; its own pace weighs in more
    with every step."""
    job_id = _running_exemplar({"iterations": 20, "size": 256})
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        started = utcnow() - timedelta(seconds=5)
        job.started_at = started
        job.progress_detail = {"step": 1, "total": 20, "iterating_seconds": 5.0}
        s.flush()
        early = Estimator(s).remaining_seconds(job, utcnow())
        job.progress_detail = {"step": 15, "total": 20, "iterating_seconds": 75.0}  # truly 5 s a step
        late = Estimator(s).remaining_seconds(job, utcnow())
    usual = Estimator(None).run_seconds("exemplar", {"iterations": 20, "size": 256}) / 20
    assert 19 * usual < early < 19 * 5 / 2  # much nearer the usual pace after one step
    assert 5 * 5 * 0.7 < late < 5 * 5  # after 15 steps, mostly its own


def test_a_resumed_job_paces_only_the_iterations_it_ran(database: str) -> None:
    """A job that went on from iteration 25 of an earlier attempt, and ran 5 more in 5 s: its pace is 1 s an
    iteration (blended with the method's usual pace over its first steps), not 5 s over 30 steps."""
    job_id = _running_exemplar({"iterations": 100, "size": 256})
    prior = Estimator(None)
    usual = prior.run_seconds("exemplar", {"iterations": 2, "size": 256}) - prior.run_seconds(
        "exemplar", {"iterations": 1, "size": 256}
    )
    trust = 5 / (5 + OWN_PACE_STEPS)  # its own pace weighs in with the steps it ran
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.started_at = utcnow() - timedelta(seconds=8)
        job.progress_detail = {"step": 30, "total": 100, "iterating_seconds": 5.0, "resumed_from": 25}
        s.flush()
        left = Estimator(s).remaining_seconds(job, utcnow())
    assert left == pytest.approx(70 * (trust * 1.0 + (1 - trust) * usual), rel=0.01)


def test_a_resumed_job_stands_where_its_saved_state_left_it_while_it_prepares(database: str) -> None:
    """An attempt that goes on from iteration 60 of 100: while it prepares, the job shows 60 / 100 (not 0 %)
    and the time of the 40 iterations left (not of the whole job)."""
    job_id = _running_exemplar({"iterations": 100, "size": 256})
    reporter = ProgressReporter(Runner(get_settings()), job_id, resumed_from=60)
    reporter(
        Progress(step=0, total=100, message="going on from iteration 60 (the job was interrupted there)")
    )
    shown = detail(job_id)
    assert shown["step"] == 60 and shown["resumed_from"] == 60
    prior = Estimator(None)
    per_iteration = prior.run_seconds("exemplar", {"iterations": 2, "size": 256}) - prior.run_seconds(
        "exemplar", {"iterations": 1, "size": 256}
    )
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None and job.progress == pytest.approx(0.6)
        left = Estimator(s).remaining_seconds(job, utcnow())
    assert 40 * per_iteration <= left <= 40 * per_iteration + prior._measured("exemplar").preparing + 0.01
