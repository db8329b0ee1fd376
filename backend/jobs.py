"""Job service: store uploads, create/cancel jobs, enqueue after commit, and sweep lost jobs.

The database is the source of truth; the broker only carries job ids. Every state change is a conditional
UPDATE (``WHERE status = ...``) so that the web process, any number of workers and their sweepers can race
without double-finishing or resurrecting a job.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.images import DecodedImage, Renditions, renditions
from backend.models import Batch, Image, Job, JobStatus, utcnow
from worker import celery_app

log = logging.getLogger("colorlab.jobs")


@dataclass(frozen=True)
class Upload:
    data: bytes
    decoded: DecodedImage
    filename: str | None
    renditions: Renditions | None = None  # made by the caller (in the decode pool); else by store_image


def find_image(session: Session, data: bytes) -> Image | None:
    """An already stored image with exactly these bytes."""
    digest = hashlib.sha256(data).hexdigest()
    return session.scalars(
        select(Image).where(Image.sha256 == digest, Image.size_bytes == len(data)).limit(1)
    ).first()


def store_image(session: Session, upload: Upload) -> Image:
    """Insert the upload's bytes and its served renditions (or reuse an identical stored image)."""
    digest = hashlib.sha256(upload.data).hexdigest()
    existing = find_image(session, upload.data)
    if existing is not None:
        return existing
    d = upload.decoded
    made = upload.renditions or renditions(d)
    image = Image(
        gray_png=made.gray_png,
        color_png=made.color_png,
        thumb_jpeg=made.thumb_jpeg,
        sha256=digest,
        data=upload.data,
        size_bytes=len(upload.data),
        width=d.width,
        height=d.height,
        mode=d.mode[:16],
        format=d.format[:16],
        is_color=d.is_color,
        filename=display_name(upload.filename),
    )
    session.add(image)
    session.flush()
    return image


def store_result(
    session: Session,
    data: bytes,
    width: int,
    height: int,
    *,
    fmt: str = "PNG",
    is_color: bool = True,
    filename: str | None = None,
) -> Image:
    """Insert an image we made ourselves (a colorization, a gray input, a study rendition); RGB."""
    image = Image(
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        size_bytes=len(data),
        width=width,
        height=height,
        mode="RGB",
        format=fmt,
        is_color=is_color,
        filename=filename,
    )
    session.add(image)
    session.flush()
    return image


def display_name(name: str | None) -> str | None:
    """A file name for display only: no directories, no control characters, bounded length."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(ch for ch in base if ch.isprintable()).strip()
    return clean[:255] or None


def client_key(cookie_value: str | None) -> str | None:
    """The stored form of a browser's history cookie (hashed: the cookie itself is never stored)."""
    if not cookie_value:
        return None
    return hashlib.sha256(cookie_value.encode()).hexdigest()[:64]


def create_job(
    session: Session,
    *,
    method: str,
    params: Mapping[str, Any],
    image: Upload,
    reference: Upload | Image | None = None,
    client: str | None = None,
    batch_id: str | None = None,
) -> Job:
    """Store the images and a queued job; the caller commits, then calls :func:`enqueue`."""
    input_image = store_image(session, image)
    ref_image = (
        reference if isinstance(reference, Image) or reference is None else store_image(session, reference)
    )
    return _queue_job(
        session,
        method=method,
        params=params,
        input_image_id=input_image.id,
        reference_image_id=ref_image.id if ref_image is not None else None,
        client=client,
        batch_id=batch_id,
        source_name=display_name(image.filename),
    )


def rerun_job(
    session: Session, job: Job, *, method: str, params: Mapping[str, Any], client: str | None = None
) -> Job:
    """A queued job on ``job``'s stored photo and reference (no new image rows); the caller commits."""
    return _queue_job(
        session,
        method=method,
        params=params,
        input_image_id=job.input_image_id,
        reference_image_id=job.reference_image_id,
        client=client,
        source_name=job.source_name,
    )


def _queue_job(session: Session, *, method: str, params: Mapping[str, Any], **columns: Any) -> Job:
    job = Job(
        method=method,
        params=dict(params),
        status=JobStatus.queued,
        progress=0.0,
        attempts=0,
        enqueued_at=utcnow(),  # about to be sent, right after the commit
        **columns,
    )
    session.add(job)
    session.flush()
    return job


def create_batch(
    session: Session,
    *,
    method: str,
    params: Mapping[str, Any],
    photos: Sequence[Upload],
    rejected: Sequence[Mapping[str, str]],
    reference: Upload | Image | None = None,
    client: str | None = None,
) -> tuple[Batch, list[str]]:
    """Store a batch and one queued job per photo (one transaction: the caller commits, then enqueues)."""
    batch = Batch(method=method, params=dict(params), client=client, rejected=[dict(r) for r in rejected])
    session.add(batch)
    session.flush()
    ref = reference if isinstance(reference, Image) or reference is None else store_image(session, reference)
    ids = [
        create_job(
            session,
            method=method,
            params=params,
            image=photo,
            reference=ref,
            client=client,
            batch_id=batch.id,
        ).id
        for photo in photos
    ]
    return batch, ids


def enqueue(session: Session, job_ids: Sequence[str]) -> list[str]:
    """Send committed jobs to the broker. A broker failure is logged, not raised: the sweeper retries.

    The jobs were committed with ``enqueued_at`` set (see :func:`create_job`), so the usual path costs no
    second write; a job whose message could not be sent gets ``enqueued_at = NULL`` back, and the sweeper
    sends it on its next round. Returns the ids that were sent.
    """
    sent: list[str] = []
    failed: list[str] = []
    methods = dict(session.execute(select(Job.id, Job.method).where(Job.id.in_(list(job_ids)))).all())
    for job_id in job_ids:
        try:
            celery_app.send_colorize(job_id, methods.get(job_id, ""))
        except Exception as exc:  # broker down: the job stays queued in the database
            log.warning("could not queue job %s now (%s); the sweeper will retry", job_id, exc)
            failed.append(job_id)
            continue
        sent.append(job_id)
    if failed:
        session.execute(
            update(Job).where(Job.id.in_(failed), Job.status == JobStatus.queued).values(enqueued_at=None)
        )
        session.commit()
    return sent


def cancel(session: Session, job_id: str) -> bool:
    """Cancel a queued or running job; False when it had already finished."""
    now = utcnow()
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.queued, JobStatus.running]))
        .values(status=JobStatus.cancelled, finished_at=now, preview_png=None)
    )
    session.commit()
    return result.rowcount == 1


@dataclass
class Freed:
    """What a deletion removed (reported by the sweeper and `colorlab sweep`)."""

    jobs: int = 0
    images: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        return f"{self.jobs} job(s), {self.images} image(s), {self.bytes / 1e6:.1f} MB"


def delete_jobs(session: Session, job_ids: Sequence[str]) -> Freed:
    """Delete finished jobs and every image only they used (the caller commits).

    Jobs that are study stimuli are kept while their study exists; images that a remaining job or a study
    uses are kept. Queued or running jobs are never deleted here (cancel them first).
    """
    from backend.study.models import Stimulus

    finished = [JobStatus.done, JobStatus.failed, JobStatus.cancelled]
    rows = session.execute(
        select(Job.id, Job.input_image_id, Job.reference_image_id, Job.result_image_id).where(
            Job.id.in_(list(job_ids)),
            Job.status.in_(finished),
            Job.id.not_in(select(Stimulus.job_id).where(Stimulus.job_id.is_not(None))),
        )
    ).all()
    if not rows:
        return Freed()
    ids = [r.id for r in rows]
    candidates = {i for r in rows for i in r[1:] if i is not None}
    session.execute(delete(Job).where(Job.id.in_(ids), Job.status.in_(finished)))
    freed = _delete_unused_images(session, candidates)
    freed.jobs = len(ids)
    return freed


def _delete_unused_images(session: Session, candidates: set[str]) -> Freed:
    from backend.study.models import Stimulus, StudyPhoto

    if not candidates:
        return Freed()
    users = (
        Job.input_image_id,
        Job.reference_image_id,
        Job.result_image_id,
        StudyPhoto.image_id,
        StudyPhoto.gray_image_id,
        Stimulus.source_image_id,
        Stimulus.display_image_id,
    )
    used: set[str] = set()
    for column in users:
        used.update(session.scalars(select(column).where(column.in_(candidates))))
    unused = sorted(candidates - used)
    if not unused:
        return Freed()
    lengths = [func.coalesce(func.length(c), 0) for c in (Image.data, Image.gray_png, Image.color_png)]
    total = lengths[0] + lengths[1] + lengths[2] + func.coalesce(func.length(Image.thumb_jpeg), 0)
    size = session.scalar(select(func.sum(total)).where(Image.id.in_(unused)))
    session.execute(delete(Image).where(Image.id.in_(unused)))
    return Freed(images=len(unused), bytes=int(size or 0))


def delete_finished(session: Session, job_id: str) -> Freed | None:
    """`DELETE /jobs/{id}` of a finished job: delete it and its images; None when it is a study stimulus."""
    for _attempt in range(3):  # an image that got a new user meanwhile: roll back and look again
        freed = delete_jobs(session, [job_id])
        if freed.jobs == 0:
            session.rollback()
            return None
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return freed
    raise IntegrityError("DELETE /jobs/{id}", None, Exception("its images kept getting new users"))


def purge_expired(
    session: Session, settings: Settings, now: datetime | None = None, batch: int = 500
) -> Freed:
    """Retention: delete finished jobs older than RETAIN_DONE_DAYS, failed or cancelled ones older than
    RETAIN_FAILED_DAYS, and the images only they used. Study stimuli stay while their study exists."""
    now = now or utcnow()
    done_before = now - timedelta(days=settings.retain_done_days)
    failed_before = now - timedelta(days=settings.retain_failed_days)
    expired = or_(
        and_(Job.status == JobStatus.done, Job.finished_at < done_before),
        and_(Job.status.in_([JobStatus.failed, JobStatus.cancelled]), Job.finished_at < failed_before),
    )
    total = Freed()
    seen: set[str] = set()
    while True:
        ids = [i for i in session.scalars(select(Job.id).where(expired).limit(batch)).all() if i not in seen]
        if not ids:
            break
        seen.update(ids)
        try:
            freed = delete_jobs(session, ids)
            session.commit()
        except IntegrityError:  # an image got a new user meanwhile: keep it, retry on the next round
            session.rollback()
            continue
        total.jobs += freed.jobs
        total.images += freed.images
        total.bytes += freed.bytes
    if total.jobs:
        log.info("retention freed %s", total)
    return total


def history(session: Session, client: str, limit: int = 100) -> list[Job]:
    return list(
        session.scalars(select(Job).where(Job.client == client).order_by(Job.created_at.desc()).limit(limit))
    )


def sweep(session: Session, settings: Settings, now: datetime | None = None) -> list[str]:
    """Find jobs the broker lost or whose worker vanished; re-queue them (or fail them when out of attempts).

    - running, but no heartbeat for ``stale_after`` seconds: the worker died. Re-queue, or fail when the job
      has used all its attempts (a job that kills its worker every time must not loop forever).
    - queued, but not sent, or sent more than ``requeue_after`` seconds ago and still not started: its
      message was lost (broker restart, flushed queue). Send it again; a duplicate message is harmless
      because the worker claims a job with a conditional update and skips one that is not queued.
    Returns the ids sent to the broker.
    """
    now = now or utcnow()
    stale_before = now - timedelta(seconds=settings.stale_after)
    stalled = session.scalars(
        select(Job.id).where(Job.status == JobStatus.running, Job.heartbeat_at < stale_before)
    ).all()
    claimed: list[str] = []
    for job_id in stalled:
        failed = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.running,
                Job.heartbeat_at < stale_before,
                Job.attempts >= settings.job_max_attempts,
            )
            .values(
                status=JobStatus.failed,
                finished_at=now,
                preview_png=None,
                error=f"the worker stopped responding during each of {settings.job_max_attempts} attempts",
            )
        )
        if failed.rowcount == 0:
            requeued = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.running, Job.heartbeat_at < stale_before)
                .values(
                    status=JobStatus.queued,
                    enqueued_at=now,
                    error="the worker running this job stopped responding; re-queued",
                )
            )
            if requeued.rowcount == 1:
                claimed.append(job_id)
    session.commit()

    resend_before = now - timedelta(seconds=settings.requeue_after)
    fresh_before = now - timedelta(seconds=2)  # leave just-created jobs to their own request
    due = session.scalars(
        select(Job.id).where(
            Job.status == JobStatus.queued,
            or_(
                Job.enqueued_at < resend_before,
                (Job.enqueued_at.is_(None)) & (Job.created_at < fresh_before),
            ),
        )
    ).all()
    for job_id in due:
        # Claim the resend so that concurrent sweepers send each job once.
        res = session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.status == JobStatus.queued,
                or_(Job.enqueued_at < resend_before, Job.enqueued_at.is_(None)),
            )
            .values(enqueued_at=now)
        )
        if res.rowcount == 1:
            claimed.append(job_id)
    session.commit()
    sent = enqueue(session, claimed)  # a send that fails is left for the next sweep
    if sent:
        log.info("sweeper re-queued %d job(s)", len(sent))
    return sent
