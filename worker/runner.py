"""Running colorization jobs from the database (called by the Celery task; testable without Celery).

One job's life here: claim it (a conditional UPDATE: only a queued job, or a running one whose worker has
gone silent, can be claimed; anything else is a duplicate message and is skipped), decode its images, run
the colorizer (with heartbeats, throttled progress, live previews and cancellation for iterative methods),
then write the result image and the final status in one transaction, only if the job is still ours.
Feed-forward methods take up to ``batch_max`` waiting jobs of the same method in one forward pass.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import undefer

from backend import jobs as jobsvc
from backend.config import Settings
from backend.db import session_scope
from backend.images import DecodedImage, ImageError, decode, encode_png
from backend.models import Image, Job, JobStatus, utcnow
from worker.colorizers import loading, methods
from worker.colorizers.base import JobCancelled, Progress
from worker.colorizers.pipeline import predict_many
from worker.quality import job_metrics

log = logging.getLogger("colorlab.worker")


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad input, missing weights)."""


@dataclass
class Claimed:
    id: str
    method: str
    params: dict[str, Any]
    attempts: int
    input_image_id: str
    reference_image_id: str | None


def resolve_device(setting: str) -> str:
    if setting != "auto":
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hostname = f"{socket.gethostname()}:{threading.get_native_id()}"
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = resolve_device(self.settings.device)
        return self._device

    # -- claiming ---------------------------------------------------------------------------------------
    def _claim(self, job_id: str) -> Claimed | None:
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.stale_after)
        with session_scope() as s:
            res = s.execute(
                update(Job)
                .where(
                    Job.id == job_id,
                    or_(
                        Job.status == JobStatus.queued,
                        and_(Job.status == JobStatus.running, Job.heartbeat_at < stale),
                    ),
                )
                .values(
                    status=JobStatus.running,
                    attempts=Job.attempts + 1,
                    started_at=now,
                    heartbeat_at=now,
                    worker=self.hostname[:255],
                    progress=0.0,
                    progress_detail=None,
                )
            )
            if res.rowcount != 1:
                return None
            job = s.get(Job, job_id)
            assert job is not None
            return Claimed(
                job.id,
                job.method,
                dict(job.params or {}),
                job.attempts,
                job.input_image_id,
                job.reference_image_id,
            )

    def _claim_batch_mates(self, first: Claimed) -> list[Claimed]:
        info = methods.get(first.method)
        if info is None or not info.batchable or self.settings.batch_max <= 1:
            return []
        with session_scope() as s:
            waiting = s.execute(
                select(Job.id, Job.params)
                .where(
                    Job.status == JobStatus.queued,
                    Job.method == first.method,
                    Job.reference_image_id.is_(None),
                    Job.id != first.id,
                )
                .order_by(Job.created_at)
                .limit(self.settings.batch_max - 1)
            ).all()
        # Options never change after submission, so jobs with other options are simply left in the queue.
        same_options = [job_id for job_id, params in waiting if dict(params or {}) == first.params]
        return [c for c in map(self._claim, same_options) if c is not None]

    # -- running ----------------------------------------------------------------------------------------
    def run(self, job_id: str) -> str:
        """Run one job (and any batch mates). Returns what happened to ``job_id``."""
        first = self._claim(job_id)
        if first is None:
            log.info("job %s: not claimable (finished, cancelled or running elsewhere); skipped", job_id)
            return "skipped"
        if first.attempts > self.settings.job_max_attempts:
            self._fail(first, f"gave up after {first.attempts - 1} attempts")
            return "failed"
        batch = [first, *self._claim_batch_mates(first)]
        with self._heartbeat([c.id for c in batch]):
            if len(batch) > 1:
                return self._run_batch(batch)
            return self._run_one(first)

    def _run_one(self, job: Claimed) -> str:
        started = time.perf_counter()
        info = methods.get(job.method)
        progress = ProgressReporter(self, job.id)
        try:
            if info is not None and info.iterative:  # minutes-long jobs say what they are doing meanwhile
                progress(Progress(step=0, total=0, message="preparing: loading the network"))
            colorizer = self._colorizer(job.method)
            if info is not None and info.iterative:
                progress(Progress(step=0, total=0, message="preparing: decoding the photo and the reference"))
            decoded, reference = self._load_inputs(job)
            lightness = decoded.lightness()
            rgb = predict_many(
                colorizer, [lightness], params=job.params, references=[reference], progress=progress
            )[0]
        except JobCancelled:
            log.info("job %s: cancelled", job.id)
            return "cancelled"
        except Exception as exc:
            return self._handle_failure(job, exc)
        return self._finish(job, rgb, time.perf_counter() - started, decoded)

    def _run_batch(self, batch: list[Claimed]) -> str:
        started = time.perf_counter()
        inputs = []
        outcome = {}
        for job in batch:
            try:
                decoded = self._load_inputs(job)[0]
                inputs.append((job, decoded, decoded.lightness()))
            except Exception as exc:
                outcome[job.id] = self._handle_failure(job, exc)
        try:
            colorizer = self._colorizer(batch[0].method)
            planes = [lightness for _, _, lightness in inputs]
            results = predict_many(colorizer, planes, params=batch[0].params, batch_size=len(planes))
        except Exception as exc:
            for job, _, _ in inputs:
                outcome[job.id] = self._handle_failure(job, exc)
            return outcome[batch[0].id]
        seconds = (time.perf_counter() - started) / max(len(inputs), 1)
        for (job, decoded, _), rgb in zip(inputs, results, strict=True):
            outcome[job.id] = self._finish(job, rgb, seconds, decoded)
        log.info("batched %d %s jobs", len(inputs), batch[0].method)
        return outcome[batch[0].id]

    def _colorizer(self, method: str) -> Any:
        try:
            return loading.get_colorizer(method, self.settings.weights_dir, self.device)
        except loading.Unavailable as exc:
            raise PermanentError(str(exc)) from None

    def _load_inputs(self, job: Claimed) -> tuple[DecodedImage, np.ndarray | None]:
        with session_scope() as s:
            ids = [job.input_image_id] + ([job.reference_image_id] if job.reference_image_id else [])
            images = {
                i.id: i.data
                for i in s.scalars(select(Image).where(Image.id.in_(ids)).options(undefer(Image.data)))
            }
        try:
            decoded = decode(images[job.input_image_id], max_pixels=self.settings.max_pixels)
            reference = None
            if job.reference_image_id:
                reference = decode(images[job.reference_image_id], max_pixels=self.settings.max_pixels).rgb
        except ImageError as exc:
            raise PermanentError(f"the stored image cannot be decoded: {exc.detail}") from None
        return decoded, reference

    # -- outcomes ---------------------------------------------------------------------------------------
    def _finish(self, job: Claimed, rgb: np.ndarray, seconds: float, source: DecodedImage) -> str:
        png = encode_png(rgb)
        with session_scope() as s:
            result = jobsvc.store_result(s, png, width=int(rgb.shape[1]), height=int(rgb.shape[0]))
            res = s.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.running, Job.worker == self.hostname[:255])
                .values(
                    status=JobStatus.done,
                    result_image_id=result.id,
                    progress=1.0,
                    finished_at=utcnow(),
                    run_seconds=round(seconds, 4),
                    error=None,
                    preview_png=None,
                )
            )
            if res.rowcount != 1:  # cancelled (or taken over) meanwhile: keep nothing
                s.rollback()
                return "cancelled"
        if source.is_color:
            self._record_metrics(job.id, rgb, source.rgb)
        return "done"

    def _record_metrics(self, job_id: str, rgb: np.ndarray, truth: np.ndarray) -> None:
        """Quality against the colour original, after the result is committed (never delays or fails it)."""
        try:
            values = job_metrics(rgb, truth)
            with session_scope() as s:
                s.execute(update(Job).where(Job.id == job_id).values(metrics=values))
        except Exception:
            log.exception("job %s: metrics against the ground truth failed", job_id)

    def _fail(self, job: Claimed, reason: str) -> None:
        with session_scope() as s:
            s.execute(
                update(Job)
                .where(Job.id == job.id, Job.status == JobStatus.running)
                .values(status=JobStatus.failed, error=reason[:2000], finished_at=utcnow(), preview_png=None)
            )

    def _handle_failure(self, job: Claimed, exc: BaseException) -> str:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, PermanentError):
            reason = str(exc)
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason = f"stopped: the job ran longer than the {self.settings.job_time_limit} s time limit"
        else:
            reason = f"{exc.__class__.__name__}: {exc}"
            log.exception("job %s: attempt %d failed", job.id, job.attempts)
            if job.attempts < self.settings.job_max_attempts:
                with session_scope() as s:
                    res = s.execute(
                        update(Job)
                        .where(Job.id == job.id, Job.status == JobStatus.running)
                        .values(
                            status=JobStatus.queued,
                            enqueued_at=None,
                            preview_png=None,
                            error=f"attempt {job.attempts} failed ({reason}); retrying",
                        )
                    )
                if res.rowcount == 1:
                    self._send_later(job.id, job.method, delay=min(2.0**job.attempts, 60.0))
                return "retrying"
            reason = f"failed after {job.attempts} attempts: {reason}"
        log.warning("job %s failed: %s", job.id, reason)
        self._fail(job, reason)
        return "failed"

    def _send_later(self, job_id: str, method: str, delay: float) -> None:
        from worker.celery_app import send_colorize

        try:
            send_colorize(job_id, method, countdown=delay)
            with session_scope() as s:
                s.execute(update(Job).where(Job.id == job_id).values(enqueued_at=utcnow()))
        except Exception as exc:  # the sweeper will send it
            log.warning("could not re-queue job %s: %s", job_id, exc)

    @contextmanager
    def _heartbeat(self, job_ids: list[str]) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.heartbeat_interval):
                try:
                    with session_scope() as s:
                        s.execute(
                            update(Job)
                            .where(Job.id.in_(job_ids), Job.status == JobStatus.running)
                            .values(heartbeat_at=utcnow())
                        )
                except Exception as exc:  # the database may be briefly away; keep beating
                    log.warning("heartbeat failed: %s", exc)

        thread = threading.Thread(target=beat, name="colorlab-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


class ProgressReporter:
    """The progress callback handed to iterative colorizers: throttled writes, previews, cancellation."""

    WRITE_EVERY = 0.5

    def __init__(self, runner: Runner, job_id: str) -> None:
        self.runner = runner
        self.job_id = job_id
        self._last_write = 0.0
        self._last_preview = 0.0
        self._last_message: str | None = None

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        final = p.total > 0 and p.step >= p.total
        new_phase = p.message != self._last_message and p.step == 0  # never throttle away a phase change
        values: dict[str, Any] = {}
        if now - self._last_write >= self.WRITE_EVERY or final or new_phase:
            self._last_write = now
            self._last_message = p.message
            values = {
                "progress": min(max(p.step / p.total, 0.0), 1.0) if p.total else 0.0,
                "progress_detail": {
                    "step": p.step,
                    "total": p.total,
                    "message": p.message,
                    "losses": {k: float(v) for k, v in p.losses.items()},
                },
                "heartbeat_at": utcnow(),
            }
            if p.preview is not None and now - self._last_preview >= self.runner.settings.preview_interval:
                self._last_preview = now
                values["preview_png"] = encode_png(p.preview(), compress_level=1)
                values["preview_at"] = utcnow()
        with session_scope() as s:
            if values:
                res = s.execute(
                    update(Job).where(Job.id == self.job_id, Job.status == JobStatus.running).values(**values)
                )
                running = res.rowcount == 1
            else:
                running = s.scalar(select(Job.status).where(Job.id == self.job_id)) == JobStatus.running
        if not running:
            raise JobCancelled(self.job_id)
