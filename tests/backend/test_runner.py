"""The worker's job logic against real databases (in-process; the Celery wiring is tested end to end)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import update

from backend import job_lifecycle as lifecycle
from backend.config import get_settings
from backend.db import session_scope
from backend.images import decode
from backend.models import Job, JobStatus, utcnow
from backend.stored_images import Upload
from tests.conftest import EXEMPLAR_PAIRS, method_available, photo_bytes
from worker.colorizers import lab, loading, methods
from worker.colorizers.method_info import MethodInfo
from worker.runner import Runner, unexpected_reason


def upload(data: bytes) -> Upload:
    return Upload(data=data, decoded=decode(data, max_pixels=10**8), filename="x.jpg")


def new_job(
    method: str = "cnn", params: dict | None = None, data: bytes | None = None, reference: bytes | None = None
) -> str:
    with session_scope() as s:
        new = lifecycle.NewJob(
            method,
            params or {},
            image=upload(data or photo_bytes()),
            reference=upload(reference) if reference else None,
        )
        job = lifecycle.create(s, new)
        return job.id


def get(job_id: str) -> Job:
    with session_scope() as s:
        job = s.get(Job, job_id)
        assert job is not None
        s.expunge(job)
        return job


def result_rgb(job_id: str) -> np.ndarray:
    from sqlalchemy import select
    from sqlalchemy.orm import undefer

    from backend.models import Image

    with session_scope() as s:
        job = s.get(Job, job_id)
        image = s.scalars(
            select(Image).where(Image.id == job.result_image_id).options(undefer(Image.data))
        ).one()
        return decode(image.data, max_pixels=10**8).rgb


@pytest.mark.parametrize("method", ["cnn", "fusion", "gan"])
def test_feed_forward_job_keeps_the_photo_l(runner: Runner, method: str) -> None:
    if not method_available(method):
        pytest.fail(f"no {method} weights (fusion also needs: colorlab weights fetch efficientnet-lite0)")
    job_id = new_job(method)
    assert runner.run(job_id) == "done"
    job = get(job_id)
    assert job.status == JobStatus.done and job.attempts == 1 and job.run_seconds and job.progress == 1.0
    out = result_rgb(job_id)
    source = decode(photo_bytes(), max_pixels=10**8)
    assert out.shape == source.rgb.shape  # full input resolution
    diff = np.abs(lab.rgb_to_lightness(out) - source.lightness())
    assert diff.mean() < 0.5 and diff.max() < 3
    chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(out)[..., 1:], -1, 0))
    assert chroma.mean() > 3
    # The upload was a colour photo: the job carries its quality against it.
    m = job.metrics
    assert 0 <= m["eq9_accuracy"] <= 1 and 0.5 < m["auc"] <= 1 and 10 < m["psnr"] < 60 and 0 < m["ssim"] <= 1
    assert m["colourfulness"] > 0 and m["colourfulness_gap"] == pytest.approx(
        m["colourfulness"] - m["colourfulness_truth"], abs=1e-2
    )
    # A duplicate message for a finished job is skipped and changes nothing.
    assert runner.run(job_id) == "skipped"
    assert get(job_id).attempts == 1


def test_waiting_jobs_of_one_method_run_as_a_batch(runner: Runner) -> None:
    if not method_available("cnn"):
        pytest.fail("bundled cnn weights missing")
    ids = [new_job("cnn", data=photo_bytes(prefix)) for prefix in ("001_", "002_", "003_")]
    assert runner.run(ids[0]) == "done"
    assert [get(i).status for i in ids] == ["done"] * 3
    assert [runner.run(i) for i in ids[1:]] == ["skipped", "skipped"]


@pytest.fixture
def boom_method(monkeypatch: pytest.MonkeyPatch) -> str:
    """A test-only method (hidden from the product by its leading underscore) that always fails."""

    class Boom:
        name = "_boom"

        def predict_ab(self, lightness, *, reference, params, progress):  # type: ignore[no-untyped-def]
            raise RuntimeError("out of cheese")

    boom = MethodInfo(name="_boom", title="Boom", description="always fails", load=lambda ctx: Boom())
    monkeypatch.setattr(methods, "METHODS", (*methods.METHODS, boom))
    yield "_boom"
    loading.clear_cache()


def test_failures_are_retried_a_bounded_number_of_times(runner: Runner, boom_method: str) -> None:
    job_id = new_job(boom_method)
    outcomes = [runner.run(job_id) for _ in range(get_settings().job_max_attempts)]
    assert outcomes == ["retrying"] * (len(outcomes) - 1) + ["failed"]
    job = get(job_id)
    assert job.status == JobStatus.failed and job.attempts == get_settings().job_max_attempts
    # The cause in plain words: the exception and its traceback are in the worker's log only.
    assert job.error == (
        f"failed after {job.attempts} attempts: an internal error in the worker "
        "(its log has the details under this job's id)"
    )
    assert "cheese" not in job.error and "RuntimeError" not in job.error
    assert runner.run(job_id) == "skipped"  # a late duplicate message does not loop


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (MemoryError(), "the worker ran out of memory on this photo"),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory"),
            "the worker ran out of memory on this photo",
        ),
        (PermissionError(13, "Permission denied"), "the worker could not read or write a file it needs"),
        (KeyError("x"), "an internal error in the worker (its log has the details under this job's id)"),
    ],
)
def test_an_unexpected_failure_is_told_in_plain_words(exc: BaseException, reason: str) -> None:
    assert unexpected_reason(exc) == reason


def test_unavailable_method_fails_at_once_with_the_fix(runner: Runner) -> None:
    if method_available("eccv16"):
        pytest.skip("eccv16 weights are present here")
    job_id = new_job("eccv16")
    assert runner.run(job_id) == "failed"
    job = get(job_id)
    assert job.attempts == 1 and "colorlab weights fetch eccv16" in job.error


def _exemplar_pair() -> tuple[bytes, bytes]:
    folder = EXEMPLAR_PAIRS / "example"
    return next(folder.glob("in1.*")).read_bytes(), next(folder.glob("ref1.*")).read_bytes()


def test_iterative_job_reports_progress_and_can_be_cancelled(runner: Runner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched (colorlab weights fetch vgg16-hed)")
    monkeypatch.setattr(runner.settings, "preview_interval", 0.0)
    target, ref = _exemplar_pair()
    job_id = new_job(
        "exemplar",
        params={**methods.get("exemplar").defaults(), "iterations": 500, "size": 48},
        data=target,
        reference=ref,
    )
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(job_id)))
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (get(job_id).progress_detail or {}).get("step"):
        time.sleep(0.1)
    job = get(job_id)
    assert job.status == JobStatus.running
    assert job.progress_detail["total"] == 500 and job.progress_detail["losses"]
    with session_scope() as s:
        assert lifecycle.cancel(s, job_id)
    cancelled_at = time.monotonic()
    thread.join(timeout=30)
    assert outcome == ["cancelled"]
    assert time.monotonic() - cancelled_at < 5  # stops within an iteration or so
    job = get(job_id)
    assert job.status == JobStatus.cancelled and job.result_image_id is None


def test_an_iterative_job_at_its_time_limit_keeps_the_colours_so_far(runner: Runner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Rather than run into the time limit and lose everything, the job stops after the iteration that
    would make it late, and finishes with the result so far, saying so."""
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched (colorlab weights fetch vgg16-hed)")
    monkeypatch.setattr(runner.settings, "job_time_limit", 10)  # the least JOB_TIME_LIMIT allowed
    target, ref = _exemplar_pair()
    params = {**methods.get("exemplar").defaults(), "iterations": 5000, "size": 48}
    job_id = new_job("exemplar", params=params, data=target, reference=ref)
    assert runner.run(job_id) == "done"
    job = get(job_id)
    assert job.run_seconds is not None and job.run_seconds < 10  # within the limit, the result stored
    step, total = job.progress_detail["step"], job.progress_detail["total"]
    assert 0 < step < total == 5000
    assert job.progress_detail["message"].startswith(f"stopped after iteration {step} of 5000")
    assert "time limit" in job.progress_detail["message"]
    out = result_rgb(job_id)
    assert out.shape == decode(target, max_pixels=10**8).rgb.shape
    chroma = np.hypot(*np.moveaxis(lab.rgb_to_lab(out)[..., 1:], -1, 0))
    assert chroma.mean() > 2  # the colours reached, not gray


def test_sweeper_requeues_lost_and_stalled_jobs(runner: Runner) -> None:
    settings = get_settings()
    unsent = new_job("cnn")  # the broker was down when it was submitted
    lost = new_job("cnn")  # sent, but the message was lost (e.g. the queue was flushed)
    waiting = new_job("cnn")  # sent a moment ago: leave it alone
    stalled = new_job("cnn")
    exhausted = new_job("cnn")
    long_ago = utcnow() - timedelta(seconds=max(settings.stale_after, settings.requeue_after) + 5)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == unsent).values(created_at=long_ago, enqueued_at=None))
        s.execute(update(Job).where(Job.id == lost).values(created_at=long_ago, enqueued_at=long_ago))
        s.execute(
            update(Job).where(Job.id == stalled).values(status="running", heartbeat_at=long_ago, attempts=1)
        )
        s.execute(
            update(Job)
            .where(Job.id == exhausted)
            .values(status="running", heartbeat_at=long_ago, attempts=settings.job_max_attempts)
        )
    with session_scope() as s:
        sent = lifecycle.sweep(s, settings)
    assert set(sent) == {unsent, lost, stalled}
    assert get(waiting).status == JobStatus.queued
    assert get(stalled).status == JobStatus.queued and "stopped responding" in get(stalled).error
    assert get(exhausted).status == JobStatus.failed
    with session_scope() as s:  # already re-sent: not sent again before REQUEUE_AFTER
        assert lifecycle.sweep(s, settings) == []


def _saved(job_id: str) -> tuple[int | None, int | None, bytes | None]:
    from sqlalchemy import select

    with session_scope() as s:
        row = s.execute(
            select(Job.resume_step, Job.resume_attempt, Job.resume_state).where(Job.id == job_id)
        ).one()
        return row.resume_step, row.resume_attempt, row.resume_state


def test_a_job_whose_worker_stopped_goes_on_from_its_saved_state(runner: Runner, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A redeploy or a crash mid-job: the next attempt goes on from the iteration last saved instead of the
    first, and attempts that saved progress do not count against JOB_MAX_ATTEMPTS (three redeploys during
    one long job failed it); the saved state goes when the job ends."""
    if not method_available("exemplar"):
        pytest.skip("exemplar weights not fetched (colorlab weights fetch vgg16-hed)")
    settings = get_settings()
    monkeypatch.setattr(runner.settings, "resume_state_interval", 1e-6)  # at every progress write
    target, ref = _exemplar_pair()
    params = {**methods.get("exemplar").defaults(), "iterations": 400, "size": 48}
    job_id = new_job("exemplar", params=params, data=target, reference=ref)
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(runner.run(job_id)))
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (_saved(job_id)[0] or 0) < 3:
        time.sleep(0.1)
    # the worker vanishes (its heartbeats stop); this thread stands for it and is told to stop
    long_ago = utcnow() - timedelta(seconds=settings.stale_after + 5)
    with session_scope() as s:
        s.execute(update(Job).where(Job.id == job_id).values(worker="gone:1", heartbeat_at=long_ago))
    thread.join(timeout=30)
    assert outcome == ["cancelled"]  # it stops at its next report: the job is no longer its
    step, attempt, state = _saved(job_id)
    assert step is not None and step >= 3 and attempt == 1 and state
    with session_scope() as s:  # as if this were its last attempt: it saved progress, so it is not
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(attempts=settings.job_max_attempts, resume_attempt=settings.job_max_attempts)
        )
    with session_scope() as s:
        assert lifecycle.sweep(s, settings) == [job_id]  # re-queued, not failed
    monkeypatch.setattr(runner.settings, "resume_state_interval", 30.0)
    with session_scope() as s:  # fewer iterations left: let it finish soon
        s.execute(update(Job).where(Job.id == job_id).values(params={**params, "iterations": step + 5}))
    assert runner.run(job_id) == "done"
    job = get(job_id)
    assert job.attempts == settings.job_max_attempts + 1 and job.result_image_id is not None
    assert job.progress_detail["resumed_from"] == step and job.progress_detail["step"] == step + 5
    assert _saved(job_id) == (None, None, None)
    assert result_rgb(job_id).shape == decode(target, max_pixels=10**8).rgb.shape


def test_attempts_without_progress_still_fail_a_job(runner: Runner) -> None:
    """A job whose worker dies again and again without saving progress is failed after JOB_MAX_ATTEMPTS,
    also after an earlier attempt saved some."""
    settings = get_settings()
    job_id = new_job("exemplar")
    long_ago = utcnow() - timedelta(seconds=settings.stale_after + 5)
    with session_scope() as s:
        s.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(
                status="running",
                heartbeat_at=long_ago,
                attempts=settings.job_max_attempts + 1,
                resume_attempt=1,
                resume_step=5,
                resume_state=b"saved",
            )
        )
    with session_scope() as s:
        assert lifecycle.sweep(s, settings) == []
    job = get(job_id)
    assert job.status == JobStatus.failed and "made no progress" in (job.error or "")
    assert _saved(job_id) == (None, None, None)


def test_a_saved_state_that_cannot_be_read_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    assert Runner._saved_state("j1", b"saved") is None  # the job then starts again
    assert "j1: its saved state is ignored" in caplog.text
