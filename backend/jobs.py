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

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from backend.config import Settings
from backend.images import DecodedImage
from backend.models import Base, Batch, Image, Job, JobStatus, utcnow
from worker import celery_app

log = logging.getLogger("colorlab.jobs")


@dataclass(frozen=True)
class Upload:
    data: bytes
    decoded: DecodedImage
    filename: str | None


def store_image(session: Session, upload: Upload) -> Image:
    """Insert the upload's bytes (or reuse an identical stored image)."""
    digest = hashlib.sha256(upload.data).hexdigest()
    existing = session.scalars(
        select(Image).where(Image.sha256 == digest, Image.size_bytes == len(upload.data)).limit(1)
    ).first()
    if existing is not None:
        return existing
    d = upload.decoded
    image = Image(
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
    job = Job(
        method=method,
        params=dict(params),
        status=JobStatus.queued,
        progress=0.0,
        attempts=0,
        input_image_id=input_image.id,
        reference_image_id=ref_image.id if ref_image is not None else None,
        client=client,
        batch_id=batch_id,
        source_name=display_name(image.filename),
        enqueued_at=utcnow(),  # about to be sent, right after the commit
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


class JobInUse(Exception):
    """The job is part of a user study: deleting it would remove a stimulus."""


def _referenced(session: Session, target: Any, value: str, skip_table: str | None = None) -> bool:
    """Does any row of any table (jobs, batches, study photos and stimuli, ...) point at ``value``?"""
    from backend.study import models as _study_models  # noqa: F401  (its tables join the metadata)

    for table in Base.metadata.tables.values():
        if table.name == skip_table:
            continue
        for column in table.columns:
            points_here = any(fk.column is target for fk in column.foreign_keys)
            if points_here and session.execute(select(column).where(column == value).limit(1)).first():
                return True
    return False


def delete_finished_job(session: Session, job_id: str) -> bool:
    """Delete a finished job and the images only it used (its result; its input and reference unless another
    job or a study still uses them). False when the job is not finished (cancel it first).

    Raises :class:`JobInUse` when a study stimulus is this job's colorization.
    """
    job = session.get(Job, job_id)
    if job is None or not JobStatus(job.status).finished:
        return False
    if _referenced(session, Job.__table__.c.id, job_id, skip_table="jobs"):
        raise JobInUse(job_id)
    images = [i for i in (job.result_image_id, job.input_image_id, job.reference_image_id) if i]
    session.delete(job)
    session.flush()
    for image_id in dict.fromkeys(images):
        if not _referenced(session, Image.__table__.c.id, image_id):
            session.execute(delete(Image).where(Image.id == image_id))
    session.commit()
    return True


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
