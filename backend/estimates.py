"""Queue position and time estimates, from the recent measured durations (torch-free).

- A feed-forward method's run time: the median ``run_seconds`` of its recent finished jobs, each scaled to
  the photo's size above 1 MP (its net works at a small size, but the photo's L, the full-size compose and
  the PNG grow with the pixels: a 40 MP scan takes several times a 12 MP phone photo's time).
- An iterative method's: its preparing time (loading, matching, targets: the run before the first iteration)
  plus the measured seconds per iteration of its recent jobs, scaled to the working size (cost grows with the
  pixels of the working image), times the iterations the options ask for.
Before anything was measured on this server, the benchmarked figures below stand in.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.models import Image, Job, JobStatus, utcnow
from backend.queue import lane_of
from worker.colorizers import methods

RECENT = 30  # finished jobs per method the estimate looks at
REFERENCE_SIZE = 256  # working size the seconds per iteration are normalised to
# Measured on the development CPU (benchmarks/RESULTS.md): used until this server has its own figures.
PRIOR_SECONDS_PER_ITERATION = 0.6
PRIOR_PREPARING_SECONDS = 2.0  # exemplar: the matched start and the VGG targets, before the first iteration
# A feed-forward job on a 1024×768 photo, end to end: 0.17-0.3 s for unet-bins (benchmarks/RESULTS.md); a
# prior of 1 s made a fresh server call "well under a second" methods "a few seconds".
PRIOR_FEEDFORWARD_SECONDS = 0.5
# A running job's first iterations are slow (L-BFGS's first line search): its own pace is trusted in full
# only over more steps than this, blended with the method's usual pace before.
OWN_PACE_STEPS = 5
# Below this size a feed-forward job's time is mostly fixed (the net at its working size); above, it grows
# with the pixels (12 / 40 MP gray scans: 2.4 / 7.9 s, benchmarks/RESULTS.md "Large photos in the worker").
FIXED_COST_MEGAPIXELS = 1.0
MAX_AHEAD_COUNTED = 1000  # beyond this many jobs ahead the estimate is a lower bound anyway


def _working_size(params: Mapping[str, Any]) -> int:
    return int(params.get("size") or REFERENCE_SIZE)


def _size_factor(megapixels: float | None) -> float:
    return max(megapixels or 0.0, FIXED_COST_MEGAPIXELS)


@dataclass(frozen=True)
class Measured:
    seconds: float  # per job (feed-forward) or per iteration at REFERENCE_SIZE (iterative)
    preparing: float = 0.0  # iterative: seconds before the first iteration
    seconds_per_size: float | None = None  # feed-forward: per :func:`_size_factor` of the photo


def _count(detail: Mapping[str, Any], key: str) -> int:
    value = detail.get(key)
    return int(value) if isinstance(value, int | float) else 0


def resumed_from(detail: Mapping[str, Any]) -> int:
    """The iterations an earlier attempt ran before it was interrupted (this attempt went on from their
    saved state); 0 for a job that was not."""
    return _count(detail, "resumed_from")


def steps_run(detail: Mapping[str, Any]) -> int:
    """The iterations a job's current (or last) attempt ran: its step, less :func:`resumed_from`."""
    return max(_count(detail, "step") - resumed_from(detail), 0)


def iterating_seconds(detail: Mapping[str, Any], run_seconds: float) -> float:
    """The iterations' share of a run: as the worker measured it, or (older jobs) the whole run."""
    measured = detail.get("iterating_seconds")
    return float(measured) if isinstance(measured, int | float) and measured > 0 else run_seconds


@dataclass
class Estimator:
    """Per-request cache of the measured figures, so a long queue costs one query per method."""

    session: Session | None  # None: the benchmarked figures only
    _per_method: dict[str, Measured] = field(default_factory=dict)

    def _measured(self, method: str) -> Measured:
        if method in self._per_method:
            return self._per_method[method]
        info = methods.get(method)
        iterative = info is not None and info.planned_iterations is not None
        rows = self._recent(method) if self.session is not None else []
        samples: list[float] = []
        preparing: list[float] = []
        per_size: list[float] = []
        for seconds, params, detail, width, height in rows:
            if not iterative:
                samples.append(float(seconds))
                per_size.append(float(seconds) / _size_factor(width * height / 1e6))
                continue
            steps = steps_run(detail or {})
            if steps > 0:
                iterating = min(iterating_seconds(detail, float(seconds)), float(seconds))
                scale = (REFERENCE_SIZE / _working_size(params or {})) ** 2
                samples.append(iterating / steps * scale)
                preparing.append(float(seconds) - iterating)
        if not samples:
            value = (
                Measured(PRIOR_SECONDS_PER_ITERATION, PRIOR_PREPARING_SECONDS)
                if iterative
                else Measured(PRIOR_FEEDFORWARD_SECONDS)
            )
        else:
            value = Measured(
                statistics.median(samples),
                statistics.median(preparing) if preparing else 0.0,
                statistics.median(per_size) if per_size else None,
            )
        self._per_method[method] = value
        return value

    def _recent(self, method: str) -> list[Any]:
        assert self.session is not None
        try:
            return list(
                self.session.execute(
                    select(Job.run_seconds, Job.params, Job.progress_detail, Image.width, Image.height)
                    .join(Image, Image.id == Job.input_image_id)
                    .where(Job.method == method, Job.status == JobStatus.done, Job.run_seconds.is_not(None))
                    .order_by(Job.finished_at.desc())
                    .limit(RECENT)
                ).all()
            )
        except SQLAlchemyError:  # database away: GET /methods still answers, with the benchmarked figures
            self.session.rollback()
            return []

    def run_seconds(self, method: str, params: Mapping[str, Any], megapixels: float | None = None) -> float:
        """Expected compute time of one job of ``method`` with ``params`` on a photo of ``megapixels`` (None:
        a photo of the recent jobs' usual size)."""
        info = methods.get(method)
        measured = self._measured(method)
        iterations = info.iterations_for(params) if info is not None else None
        if iterations is None:
            if megapixels is None:
                return measured.seconds
            per_size = measured.seconds if measured.seconds_per_size is None else measured.seconds_per_size
            return per_size * _size_factor(megapixels)
        return measured.preparing + self._per_iteration(method, params) * iterations

    def expected_seconds(self, method: str, params: Mapping[str, Any]) -> float:
        """Expected compute time of a job not yet submitted (the upload page's estimate)."""
        return round(self.run_seconds(method, params), 1)

    def _per_iteration(self, method: str, params: Mapping[str, Any]) -> float:
        return self._measured(method).seconds * (_working_size(params) / REFERENCE_SIZE) ** 2

    def remaining_seconds(self, job: Job, now: datetime) -> float:
        """What is left of a running job: from its own iterations' pace when it reports steps (the time spent
        preparing says nothing about the steps left), blended over its first steps with the method's usual
        pace (the first iterations are the slowest), else from the estimate."""
        detail = job.progress_detail or {}
        step, total = int(detail.get("step") or 0), int(detail.get("total") or 0)
        elapsed = (now - job.started_at).total_seconds() if job.started_at else 0.0
        ran = steps_run(detail)
        if ran > 0 and total > 0:
            own = iterating_seconds(detail, elapsed) / ran
            trust = ran / (ran + OWN_PACE_STEPS)
            pace = trust * own + (1 - trust) * self._per_iteration(job.method, job.params or {})
            return max(pace * (total - step), 0.0)
        before = resumed_from(detail)
        if total > 0 and before > 0:  # preparing to go on from a saved state
            preparing = self._measured(job.method).preparing
            per_iteration = self._per_iteration(job.method, job.params or {})
            return max(preparing - elapsed, 0.0) + per_iteration * max(total - before, 0)
        return max(self.run_seconds(job.method, job.params or {}, _megapixels(job)) - elapsed, 0.0)


def _megapixels(job: Job) -> float | None:
    photo = job.input_image
    return photo.width * photo.height / 1e6 if photo is not None else None


def lane_methods(lane: str) -> list[str]:
    return [m.name for m in methods.METHODS if lane_of(m.name) == lane]


def queue_info(session: Session, settings: Settings, job: Job) -> dict[str, Any] | None:
    """Where an unfinished job stands in its lane: jobs ahead, and estimated start and finish times."""
    if JobStatus(job.status).finished:
        return None
    lane = lane_of(job.method)
    concurrency = settings.concurrency_of(lane)
    est = Estimator(session)
    now = utcnow()
    own = est.run_seconds(job.method, job.params or {}, _megapixels(job))
    if job.status == JobStatus.running:
        left = est.remaining_seconds(job, now)
        return {
            "lane": lane,
            "ahead": 0,
            "estimated_start": job.started_at,
            "estimated_finish": now + timedelta(seconds=left),
            "estimated_run_seconds": round(own, 1),
        }
    methods = lane_methods(lane)
    running = session.scalars(
        select(Job).where(Job.method.in_(methods), Job.status == JobStatus.running, Job.id != job.id)
    ).all()
    ahead = session.execute(
        select(Job.method, Job.params, Image.width * Image.height)
        .join(Image, Image.id == Job.input_image_id)
        .where(
            Job.method.in_(methods),
            Job.status == JobStatus.queued,
            Job.created_at < job.created_at,
            Job.id != job.id,
        )
        .order_by(Job.created_at)
        .limit(MAX_AHEAD_COUNTED)
    ).all()
    work = sum(est.remaining_seconds(r, now) for r in running)
    work += sum(est.run_seconds(method, params or {}, pixels / 1e6) for method, params, pixels in ahead)
    wait = work / concurrency
    return {
        "lane": lane,
        "ahead": len(ahead),
        "estimated_start": now + timedelta(seconds=wait),
        "estimated_finish": now + timedelta(seconds=wait + own),
        "estimated_run_seconds": round(own, 1),
    }
