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
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import undefer

from backend import job_lifecycle as lifecycle
from backend.config import Settings
from backend.db import session_scope
from backend.errors import UserError
from backend.images import DecodedImage, decode, encode_png
from backend.models import Image
from backend.stored_images import store_result
from worker.colorizers import loading, methods
from worker.colorizers.base import IterationState, JobCancelled, Progress, StopEarly
from worker.colorizers.pipeline import predict_many
from worker.quality import job_metrics

log = logging.getLogger("colorlab.worker")

# A fast-lane batch is colorized in passes of about this many pixels (a pass ends once it holds them): each
# photo is held at full size until its pass is done (its pixels, its L and its result, about 10 bytes a
# pixel), so BATCH_MAX scans of 40 MP held 6 GB at once. A large photo gains nothing from sharing a pass
# (its cost is the full-size L, compose and PNG, not the net at its small working size); small photos still
# share one.
BATCH_PASS_PIXELS = 24_000_000


_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory", "not enough memory")


def unexpected_reason(exc: BaseException) -> str:
    """What a job's owner reads about a failure that is no fault of the photo: the cause in plain words,
    never a Python exception (its traceback is in the worker's log, under the job's id)."""
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or any(words in text for words in _OUT_OF_MEMORY):
        return "the worker ran out of memory on this photo"
    if isinstance(exc, OSError):
        return "the worker could not read or write a file it needs"
    return "an internal error in the worker (its log has the details under this job's id)"


class PermanentError(Exception):
    """A failure that retrying cannot fix (bad input, missing weights)."""


class RetryableError(Exception):
    """A failure worth another attempt whose message is for the job's owner (weights that would not load:
    an operator may fetch them again meanwhile)."""


@dataclass
class Claimed:
    id: str
    method: str
    params: dict[str, Any]
    attempts: int
    input_image_id: str
    reference_image_id: str | None
    attempts_without_progress: int = 0  # since the last attempt that saved its state: what the limit bounds
    resume: IterationState | None = None  # an iterative job's saved state, to go on from


class Runner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.hostname = f"{socket.gethostname()}:{threading.get_native_id()}"
        self._device: str | None = None

    @property
    def device(self) -> str:
        if self._device is None:
            self._device = loading.resolve_device(self.settings.device)
        return self._device

    # -- claiming ---------------------------------------------------------------------------------------
    def _claim(self, job_id: str) -> Claimed | None:
        with session_scope() as s:
            job = lifecycle.claim(s, job_id, worker=self.hostname, stale_after=self.settings.stale_after)
            if job is None:
                return None
            return Claimed(
                job.id,
                job.method,
                dict(job.params or {}),
                job.attempts,
                job.input_image_id,
                job.reference_image_id,
                attempts_without_progress=lifecycle.attempts_without_progress_of(job),
                resume=self._saved_state(job.id, job.resume_state) if job.resume_step is not None else None,
            )

    @staticmethod
    def _saved_state(job_id: str, data: bytes | None) -> IterationState | None:
        """The state an earlier attempt saved, or None (then the job starts again) when it cannot be read."""
        try:
            return IterationState.from_bytes(data) if data else None
        except ValueError as exc:
            log.warning("job %s: its saved state is ignored: %s", job_id, exc)
            return None

    def _claim_batch_mates(self, first: Claimed) -> list[Claimed]:
        info = methods.get(first.method)
        if info is None or not info.batchable or self.settings.batch_max <= 1:
            return []
        with session_scope() as s:
            mates = lifecycle.batch_mates(
                s, first.id, first.method, first.params, limit=self.settings.batch_max - 1
            )
        return [c for c in map(self._claim, mates) if c is not None]

    # -- running ----------------------------------------------------------------------------------------
    def run(self, job_id: str) -> str:
        """Run one job (and any batch mates). Returns what happened to ``job_id``."""
        first = self._claim(job_id)
        if first is None:
            log.info("job %s: not claimable (finished, cancelled or running elsewhere); skipped", job_id)
            return "skipped"
        if first.attempts_without_progress > self.settings.job_max_attempts:
            tried = first.attempts_without_progress - 1
            since = " since the last one that made progress" if first.resume is not None else ""
            self._fail(first, f"gave up after {tried} attempts{since}")
            return "failed"
        batch = [first, *self._claim_batch_mates(first)]
        with self._heartbeat([c.id for c in batch]):
            if len(batch) > 1:
                return self._run_batch(batch)
            return self._run_one(first)

    def _run_one(self, job: Claimed) -> str:
        started = time.perf_counter()
        info = methods.get(job.method)
        progress = ProgressReporter(self, job.id, resumed_from=job.resume.step if job.resume else 0)
        try:
            if info is not None and info.iterative:  # minutes-long jobs say what they are doing meanwhile
                progress(Progress(step=0, total=0, message="preparing: loading the network"))
            colorizer = self._colorizer(job.method)
            if info is not None and info.iterative:
                progress(Progress(step=0, total=0, message="preparing: decoding the photo and the reference"))
            decoded, reference = self._load_inputs(job)
            rgb = predict_many(
                colorizer,
                [decoded.lightness()],
                params=job.params,
                references=[reference],
                progress=progress,
                depths=[decoded.bits],  # a 16-bit scan's result keeps its levels (uint16)
                resume=job.resume,  # an earlier attempt's saved state: go on from it
            )[0]
            reference = None  # the photo's L and the reference go before the PNG and the metrics are made
        except JobCancelled:
            log.info("job %s: cancelled", job.id)
            return "cancelled"
        except Exception as exc:
            if progress.saved_step is not None:  # this attempt made progress: it is not counted
                job = replace(job, attempts_without_progress=0)
            return self._handle_failure(job, exc)
        return self._finish(job, rgb, time.perf_counter() - started, decoded)

    def _run_batch(self, batch: list[Claimed]) -> str:
        """Colorize claimed jobs of one method in passes of about :data:`BATCH_PASS_PIXELS` pixels."""
        outcome: dict[str, str] = {}
        pending = list(batch)
        while pending:
            started = time.perf_counter()
            inputs: list[tuple[Claimed, DecodedImage]] = []
            planes: list[np.ndarray] = []
            pixels = 0
            while pending and pixels < BATCH_PASS_PIXELS:
                job = pending.pop(0)
                try:
                    decoded = self._load_inputs(job)[0]
                    planes.append(decoded.lightness())
                    inputs.append((job, decoded))
                    pixels += decoded.width * decoded.height
                except Exception as exc:
                    outcome[job.id] = self._handle_failure(job, exc)
            if inputs:
                self._run_pass(inputs, planes, started, outcome)
        log.info("batched %d %s jobs", len(batch), batch[0].method)
        return outcome[batch[0].id]

    def _run_pass(
        self,
        inputs: list[tuple[Claimed, DecodedImage]],
        planes: list[np.ndarray],
        started: float,
        outcome: dict[str, str],
    ) -> None:
        """One forward pass over ``inputs`` (their L ``planes``, emptied once used) into ``outcome``."""
        try:
            colorizer = self._colorizer(inputs[0][0].method)
            results = predict_many(
                colorizer,
                planes,
                params=inputs[0][0].params,
                batch_size=len(planes),
                depths=[decoded.bits for _, decoded in inputs],
            )
        except Exception as exc:
            for job, _ in inputs:
                outcome[job.id] = self._handle_failure(job, exc)
            return
        planes.clear()  # the L planes go before the PNGs and the metrics are made
        seconds = (time.perf_counter() - started) / len(inputs)
        for (job, decoded), rgb in zip(inputs, results, strict=True):
            outcome[job.id] = self._finish(job, rgb, seconds, decoded)

    def _colorizer(self, method: str) -> Any:
        try:
            return loading.get_colorizer(
                method, self.settings.weights_dir, self.device, bf16=self.settings.cpu_bf16
            )
        except loading.Unloadable as exc:
            raise RetryableError(str(exc)) from None
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
        except UserError as exc:
            raise PermanentError(f"the stored image cannot be decoded: {exc.detail}") from None
        return decoded, reference

    # -- outcomes ---------------------------------------------------------------------------------------
    def _finish(self, job: Claimed, rgb: np.ndarray, seconds: float, source: DecodedImage) -> str:
        # the photo's resolution, EXIF and XMP kept, and marked as the method's colorization; a 16-bit
        # scan's result (uint16) is a 16-bit PNG
        png = encode_png(rgb, metadata=source.metadata, colorized_by=job.method)
        with session_scope() as s:
            result = store_result(s, png, width=int(rgb.shape[1]), height=int(rgb.shape[0]))
            finished = lifecycle.finish(
                s, job.id, worker=self.hostname, result_image_id=result.id, run_seconds=seconds
            )
            if not finished:  # cancelled (or taken over) meanwhile: keep nothing
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
                lifecycle.record_metrics(s, job_id, values)
        except Exception:
            log.exception("job %s: metrics against the ground truth failed", job_id)

    def _fail(self, job: Claimed, reason: str) -> None:
        with session_scope() as s:
            lifecycle.fail(s, job.id, reason, worker=self.hostname)

    def _handle_failure(self, job: Claimed, exc: BaseException) -> str:
        from celery.exceptions import SoftTimeLimitExceeded

        if isinstance(exc, PermanentError):
            reason = str(exc)
        elif isinstance(exc, SoftTimeLimitExceeded):
            reason = f"stopped: the job ran longer than the {self.settings.job_time_limit} s time limit"
        else:
            reason = str(exc) if isinstance(exc, RetryableError) else unexpected_reason(exc)
            log.exception("job %s: attempt %d failed", job.id, job.attempts)
            if job.attempts_without_progress < self.settings.job_max_attempts:
                note = f"attempt {job.attempts} failed ({reason}); retrying"
                with session_scope() as s:
                    requeued = lifecycle.retry(s, job.id, note, worker=self.hostname)
                if requeued:  # committed: now send it again, after a back-off
                    try:
                        with session_scope() as s:
                            lifecycle.enqueue(s, [job.id], countdown=min(2.0**job.attempts, 60.0))
                    except Exception as exc:  # the database went away meanwhile: the sweeper sends it
                        log.warning("could not re-queue job %s: %s", job.id, exc)
                return "retrying"
            reason = f"failed after {job.attempts} attempts: {reason}"
        log.warning("job %s failed: %s", job.id, reason)
        self._fail(job, reason)
        return "failed"

    @contextmanager
    def _heartbeat(self, job_ids: list[str]) -> Iterator[None]:
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.settings.heartbeat_interval):
                try:
                    with session_scope() as s:
                        lifecycle.heartbeat(s, job_ids)
                except Exception as exc:  # the database may be briefly away; keep beating
                    log.warning("heartbeat failed: %s", exc)

        thread = threading.Thread(target=beat, name="colorlab-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=5)


# What a job stopped at its time limit keeps in hand to finish: encoding, storing and scoring its result (a
# 40 MP PNG takes ~10 s); at most a fifth of the limit.
FINISH_ALLOWANCE = 60.0


class ProgressReporter:
    """The progress callback handed to iterative colorizers: throttled writes, previews, the colorizer's
    state saved every RESUME_STATE_INTERVAL seconds (a later attempt goes on from it), cancellation, and an
    early stop when another iteration would run past the job's time limit (the result so far is kept rather
    than the whole run lost to the limit)."""

    WRITE_EVERY = 0.5

    def __init__(self, runner: Runner, job_id: str, *, resumed_from: int = 0) -> None:
        self.runner = runner
        self.job_id = job_id
        self._last_write = 0.0
        self._last_preview = 0.0
        self._last_saved = time.monotonic()
        self.saved_step: int | None = None  # the last step whose state this attempt saved
        self._first_ran: int | None = None  # the first iteration this attempt ran
        # The iterations an earlier attempt ran, from its saved state: as claimed until the first iteration
        # says where the colorizer went on from (it starts afresh from a state it cannot use).
        self.resumed_from = resumed_from
        self._last_message: str | None = None
        self._iterations_from = time.monotonic()  # the last step-0 report: preparing ends, iterating starts
        self._last_report = self._iterations_from
        limit = float(runner.settings.job_time_limit)
        self._stop_by = self._iterations_from + limit - min(FINISH_ALLOWANCE, 0.2 * limit)

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        step_seconds, self._last_report = now - self._last_report, now
        if p.step == 0:
            self._iterations_from = now
        elif self._first_ran is None:
            self._first_ran = p.step
            self.resumed_from = p.step - 1
        # another iteration as long as this one would end past the limit: stop here, keeping the result
        stopping = 0 < p.step < p.total and now + step_seconds > self._stop_by
        if stopping:
            limit = self.runner.settings.job_time_limit
            p = replace(
                p,
                message=f"stopped after iteration {p.step} of {p.total}: the server's time limit for a job "
                f"({limit} s) was reached; this is the result so far",
            )
        final = (p.total > 0 and p.step >= p.total) or stopping
        new_phase = p.message != self._last_message and p.step == 0  # never throttle away a phase change
        write = now - self._last_write >= self.WRITE_EVERY or final or new_phase
        preview = None
        state = None
        # while an attempt that goes on from a saved state prepares, it stands where that state left it
        shown = max(p.step, self.resumed_from) if p.total else p.step
        resumed = {"resumed_from": self.resumed_from} if self.resumed_from else {}
        if write:
            self._last_write = now
            self._last_message = p.message
            if p.preview is not None and now - self._last_preview >= self.runner.settings.preview_interval:
                self._last_preview = now
                preview = encode_png(p.preview(), compress_level=1)
            every = self.runner.settings.resume_state_interval
            # not after the last iteration: nothing is left to go on with, and a failure in storing the result
            # (a 40 MP scan out of memory) must not count as progress
            due = now - self._last_saved >= every and not final
            if p.state is not None and p.step > 0 and every > 0 and due:
                self._last_saved = now
                state = (p.step, p.state().to_bytes())
        with session_scope() as s:
            if write:
                running = lifecycle.record_progress(
                    s,
                    self.job_id,
                    fraction=min(max(shown / p.total, 0.0), 1.0) if p.total else 0.0,
                    detail={
                        "step": shown,
                        "total": p.total,
                        "message": p.message,
                        "losses": {k: float(v) for k, v in p.losses.items()},
                        # the iterations' own time (loading and matching excluded): the time estimates
                        # extrapolate from it, not from the whole run
                        "iterating_seconds": round(now - self._iterations_from, 3) if p.step else 0.0,
                        # the iterations an earlier attempt ran (its saved state): the pace counts the others
                        **resumed,
                    },
                    preview_png=preview,
                    worker=self.runner.hostname,  # taken over by another worker (after a silence): stop
                    saved=state,
                )
                if running and state is not None:
                    self.saved_step = state[0]
            else:
                running = lifecycle.is_running(s, self.job_id)
        if not running:
            raise JobCancelled(self.job_id)
        if stopping:
            raise StopEarly(p.message)
