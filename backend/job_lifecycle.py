"""The job lifecycle: every change of a job's state, each a named function, and nowhere else.

    create ──commit──> enqueue ──> claim ──> heartbeat / record_progress ──> finish
                          ▲          │                                  └──> fail
                          │          └──> retry (re-queued, sent again after a back-off)
                          └── sweep (lost message, silent worker)          cancel (queued or running)
    one job: cancel_one (POST /jobs/{id}/cancel), delete_one (DELETE /jobs/{id}: cancelled first, then
    deleted); finished jobs: purge_expired (retention)
    a batch's or comparison's jobs together: cancel_together, delete_together (cancelled first, then deleted)

The database is the source of truth; the broker only carries job ids (``backend.queue``). Every state change
is a conditional UPDATE (``WHERE status = ...``), so the web process, any number of workers and their
sweepers can race without double-finishing or resurrecting a job. The web app and the study builder create
and cancel jobs; the worker service (``worker/runner.py``) claims, reports and finishes them. Finishing,
failing or cancelling a job with a webhook owes its call in the same transaction (``backend.webhooks``).
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, and_, delete, func, inspect, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend import queue, webhooks
from backend.config import Settings
from backend.db import rowcount
from backend.errors import UserError
from backend.models import (
    FINISHED_STATUSES,
    Batch,
    IdempotentRequest,
    Image,
    Job,
    JobStatus,
    is_valid_id,
    utcnow,
)
from backend.stored_images import Freed, Upload, delete_unused_images, display_name, store_image
from backend.study.models import Stimulus

log = logging.getLogger("colorlab.jobs")


# -- creating ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NewJob:
    """One job to create: a method with checked options on a photo (a new upload, or a stored image when a
    job is re-run) and, for methods that need one, a colour reference."""

    method: str
    params: Mapping[str, Any]
    image: Upload | Image
    reference: Upload | Image | None = None
    source_name: str | None = None  # shown and used in download names; default: the upload's file name
    reference_name: str | None = None  # default: the reference upload's file name
    rerun_of: str | None = None  # the job this one re-runs with other options (see :func:`rerun`)
    fix_preview: bool = False  # a "Fix colours" preview: out of the history until kept (:func:`keep`)
    webhook_url: str | None = None  # called once the job has finished (``backend.webhooks``)


def create(
    session: Session,
    new: NewJob,
    *,
    client: str | None = None,
    batch_id: str | None = None,
    group_id: str | None = None,
    stored: dict[int, Image] | None = None,
) -> Job:
    """Store the job's images and a queued job (flushed, not committed): the caller commits, then calls
    :func:`enqueue`. ``stored`` remembers uploads already stored in this transaction (several jobs on one
    photo store it once)."""
    stored = {} if stored is None else stored
    input_image = _stored(session, new.image, stored)
    reference = _stored(session, new.reference, stored) if new.reference is not None else None
    name = new.source_name
    if name is None and isinstance(new.image, Upload):
        name = display_name(new.image.filename)
    reference_name = new.reference_name
    if reference_name is None and isinstance(new.reference, Upload):
        reference_name = display_name(new.reference.filename)
    job = Job(
        method=new.method,
        params=dict(new.params),
        status=JobStatus.queued,
        progress=0.0,
        attempts=0,
        enqueued_at=utcnow(),  # about to be sent, right after the commit
        input_image_id=input_image.id,
        reference_image_id=reference.id if reference is not None else None,
        client=client,
        batch_id=batch_id,
        group_id=group_id,
        source_name=name,
        reference_name=reference_name,
        rerun_of=new.rerun_of,
        fix_preview=new.fix_preview,
        webhook_url=new.webhook_url,
    )
    session.add(job)
    session.flush()
    return job


def _stored(session: Session, image: Upload | Image, stored: dict[int, Image]) -> Image:
    if isinstance(image, Image):
        return image
    if id(image) not in stored:
        stored[id(image)] = store_image(session, image)
    return stored[id(image)]


def rerun(
    job: Job,
    method: str,
    params: Mapping[str, Any],
    reference: Upload | Image | None = None,
    fix_preview: bool = False,
    webhook_url: str | None = None,
) -> NewJob:
    """`POST /jobs/{id}/rerun`: a new job on ``job``'s stored photo and its reference, or ``reference`` (no
    new image rows but that one's), linked back to ``job`` through ``rerun_of``; ``fix_preview``: a "Fix
    colours" preview. Loads the reference row: call it in a thread."""
    return NewJob(
        method,
        params,
        image=job.input_image,
        reference=reference if reference is not None else job.reference_image,
        source_name=job.source_name,
        reference_name=job.reference_name if reference is None else None,
        rerun_of=job.id,
        fix_preview=fix_preview,
        webhook_url=webhook_url,
    )


def keep(session: Session, job: Job) -> Job:
    """`POST /jobs/{id}/keep`: a preview becomes a job like any other (in the history, kept as long); a job
    that is not a preview is left as it is. 404 when retention deleted it meanwhile."""
    if job.fix_preview:
        preview = and_(Job.id == job.id, Job.fix_preview.is_(True))
        session.execute(update(Job).where(preview).values(fix_preview=False))
        session.commit()
        kept = session.get(Job, job.id, populate_existing=True)
        if kept is None:
            raise UserError(404, "no such job (it was deleted)")
        return kept
    return job


def create_batch(
    session: Session,
    *,
    method: str,
    params: Mapping[str, Any],
    rejected: Sequence[Mapping[str, str]],
    client: str | None = None,
    batch_id: str | None = None,
    webhook_url: str | None = None,
) -> Batch:
    """The batch row its jobs point at (flushed, not committed; pass its id to :func:`create_and_enqueue`);
    ``webhook_url`` is called once all its photos have finished."""
    batch = Batch(
        method=method,
        params=dict(params),
        client=client,
        rejected=[dict(r) for r in rejected],
        webhook_url=webhook_url,
    )
    if batch_id is not None:
        batch.id = batch_id
    session.add(batch)
    session.flush()
    return batch


def create_and_enqueue(
    session: Session,
    new_jobs: Sequence[NewJob],
    *,
    client: str | None = None,
    batch_id: str | None = None,
    group_id: str | None = None,
    with_rows: Callable[[], object] | None = None,
) -> list[str]:
    """Create the jobs, commit (with the rows ``with_rows`` adds first, e.g. their batch), and only then
    send their ids to the broker: a job is never sent before it exists. Blocking I/O: run it in a thread.

    An upload identical to a stored image shares that image; when another client deletes it (its last
    job) between the lookup and the commit, the commit fails: roll back and store it again (``with_rows``
    is called again). A stored image or re-run job that was deleted meanwhile is a 404."""
    for _attempt in range(3):
        if with_rows is not None:
            with_rows()
        stored: dict[int, Image] = {}
        try:
            ids = [
                create(session, new, client=client, batch_id=batch_id, group_id=group_id, stored=stored).id
                for new in new_jobs
            ]
            session.commit()
        except IntegrityError:
            session.rollback()
            _require_sources(session, new_jobs)
            continue
        enqueue(session, ids)
        return ids
    # Three deletions racing three attempts: say so, as a refusal to retry, not a 500.
    raise UserError(409, "the photo was deleted while the job was being made, three times; try again")


def _require_sources(session: Session, new_jobs: Sequence[NewJob]) -> None:
    """404 when a stored image or the re-run job that ``new_jobs`` name is gone (deleted meanwhile)."""
    for new in new_jobs:
        images = [i for i in (new.image, new.reference) if isinstance(i, Image)]
        image_ids = [key[0] for key in (inspect(i).identity for i in images) if key]  # no load: may be gone
        found = session.scalar(select(func.count()).select_from(Image).where(Image.id.in_(image_ids)))
        if found != len(set(image_ids)):
            raise UserError(404, "a photo of this job was deleted meanwhile")
        if new.rerun_of is not None and session.get(Job, new.rerun_of, populate_existing=True) is None:
            raise UserError(404, "no such job (it was deleted)")


def enqueue(session: Session, job_ids: Sequence[str], *, countdown: float | None = None) -> list[str]:
    """Send committed jobs to the broker. A broker failure is logged, not raised: the sweeper retries.

    The jobs were committed with ``enqueued_at`` set (see :func:`create` and :func:`retry`), so the usual
    path costs no second write; a job whose message could not be sent gets ``enqueued_at = NULL`` back, and
    the sweeper sends it on its next round. Returns the ids that were sent.
    """
    sent: list[str] = []
    failed: list[str] = []
    methods = dict(session.execute(select(Job.id, Job.method).where(Job.id.in_(list(job_ids)))).all())
    for job_id in job_ids:
        try:
            queue.send(job_id, methods.get(job_id, ""), countdown=countdown)
        except Exception as exc:  # the job stays queued in the database: the sweeper sends it again
            if isinstance(exc, queue.BROKER_ERRORS):  # broker down: one line
                log.warning("could not queue job %s now (%s); the sweeper will retry", job_id, exc)
            else:  # a bug, not the broker: said loudly
                log.exception("could not queue job %s; the sweeper will retry", job_id)
            failed.append(job_id)
            continue
        sent.append(job_id)
    if failed:
        session.execute(
            update(Job).where(Job.id.in_(failed), Job.status == JobStatus.queued).values(enqueued_at=None)
        )
        session.commit()
    return sent


# -- running (the worker service) --------------------------------------------------------------------------
def claim(session: Session, job_id: str, *, worker: str, stale_after: float) -> Job | None:
    """Take a job to run: only a queued job, or a running one whose worker has been silent for
    ``stale_after`` seconds, can be claimed; anything else (a duplicate message, a cancelled job) gives None.
    Counts the attempt."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_after)
    res = session.execute(
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
            worker=worker[:255],
            progress=0.0,
            progress_detail=None,
        )
    )
    if rowcount(res) != 1:
        return None
    return session.get(Job, job_id, populate_existing=True)


def batch_mates(
    session: Session, job_id: str, method: str, params: Mapping[str, Any], *, limit: int
) -> list[str]:
    """Queued jobs that can run in one forward pass with job ``job_id``: same method and options, no
    reference. Options never change after submission, so jobs with other options are simply left queued."""
    waiting = session.execute(
        select(Job.id, Job.params)
        .where(
            Job.status == JobStatus.queued,
            Job.method == method,
            Job.reference_image_id.is_(None),
            Job.id != job_id,
        )
        .order_by(Job.created_at)
        .limit(limit)
    ).all()
    return [other for other, other_params in waiting if dict(other_params or {}) == dict(params)]


def heartbeat(session: Session, job_ids: Sequence[str]) -> None:
    """The worker running these jobs is alive (the sweeper re-queues jobs whose worker went silent)."""
    session.execute(
        update(Job)
        .where(Job.id.in_(list(job_ids)), Job.status == JobStatus.running)
        .values(heartbeat_at=utcnow())
    )


# An ended job keeps no saved state (it can be large, and nothing goes on from it).
_NO_RESUME_STATE: dict[str, Any] = {"resume_state": None, "resume_step": None, "resume_attempt": None}


def attempts_without_progress_of(job: Job) -> int:
    """:func:`attempts_without_progress` of a loaded job."""
    return job.attempts - (job.resume_attempt or 0)


def attempts_without_progress() -> ColumnElement[int]:
    """A job's attempts since the last one that saved its state (all of them when none did): what
    JOB_MAX_ATTEMPTS bounds, so that a long job stopped again and again (redeploys) but going on each time is
    not failed, while one that makes no progress still is. Progress is bounded by the job's iterations."""
    return Job.attempts - func.coalesce(Job.resume_attempt, 0)


def _running_for(job_id: str, worker: str | None) -> ColumnElement[bool]:
    """The job, while it runs (and, given ``worker``, while it is still that worker's: a worker the sweeper
    took it from, after a silence, changes it no more)."""
    running = and_(Job.id == job_id, Job.status == JobStatus.running)
    return running if worker is None else and_(running, Job.worker == worker[:255])


def record_progress(
    session: Session,
    job_id: str,
    *,
    fraction: float,
    detail: Mapping[str, Any],
    preview_png: bytes | None = None,
    worker: str | None = None,
    saved: tuple[int, bytes] | None = None,
) -> bool:
    """Store a running job's progress (and live preview, and ``saved``: a step and the colorizer's state
    after it, to go on from); False when it is no longer running (cancelled) or no longer ``worker``'s
    (taken over): the worker then stops."""
    now = utcnow()
    values: dict[str, Any] = {"progress": fraction, "progress_detail": dict(detail), "heartbeat_at": now}
    if preview_png is not None:
        values.update(preview_png=preview_png, preview_at=now)
    if saved is not None:
        step, state = saved
        values.update(resume_state=state, resume_step=step, resume_attempt=Job.attempts)
    res = session.execute(update(Job).where(_running_for(job_id, worker)).values(**values))
    return rowcount(res) == 1


def is_running(session: Session, job_id: str) -> bool:
    return session.scalar(select(Job.status).where(Job.id == job_id)) == JobStatus.running


def finish(session: Session, job_id: str, *, worker: str, result_image_id: str, run_seconds: float) -> bool:
    """Done, with its result, only if the job is still this worker's; False when it was cancelled or taken
    over meanwhile (the caller then rolls back its result image)."""
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == JobStatus.running, Job.worker == worker[:255])
        .values(
            status=JobStatus.done,
            result_image_id=result_image_id,
            progress=1.0,
            finished_at=utcnow(),
            run_seconds=round(run_seconds, 4),
            error=None,
            preview_png=None,
            **_NO_RESUME_STATE,
        )
    )
    if rowcount(res) != 1:
        return False
    webhooks.owe(session, [job_id])
    return True


def record_metrics(session: Session, job_id: str, metrics: Mapping[str, Any]) -> None:
    """Quality against the colour original, written after the result (never delays or fails the job)."""
    session.execute(update(Job).where(Job.id == job_id).values(metrics=dict(metrics)))


def fail(session: Session, job_id: str, reason: str, *, worker: str | None = None) -> None:
    """A running job failed for good; ``reason`` is shown to the person who submitted it. Given ``worker``,
    only while the job is still that worker's (one that lost it fails another worker's run no more)."""
    res = session.execute(
        update(Job)
        .where(_running_for(job_id, worker))
        .values(
            status=JobStatus.failed,
            error=reason[:2000],
            finished_at=utcnow(),
            preview_png=None,
            **_NO_RESUME_STATE,
        )
    )
    if rowcount(res) == 1:
        webhooks.owe(session, [job_id])


def retry(session: Session, job_id: str, note: str, *, worker: str | None = None) -> bool:
    """Put a running job whose attempt failed back in the queue (the caller commits, then sends it with a
    back-off through :func:`enqueue`); ``note`` says why, meanwhile. False when it is no longer running (or,
    given ``worker``, no longer that worker's)."""
    res = session.execute(
        update(Job)
        .where(_running_for(job_id, worker))
        .values(status=JobStatus.queued, enqueued_at=utcnow(), preview_png=None, error=note)
    )
    return rowcount(res) == 1


# -- stopping and cleaning up ------------------------------------------------------------------------------
def cancel(session: Session, job_id: str) -> bool:
    """Cancel a queued or running job (commits); False when it had already finished. A running job's worker
    notices at its next progress report and stops."""
    result = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_([JobStatus.queued, JobStatus.running]))
        .values(status=JobStatus.cancelled, finished_at=utcnow(), preview_png=None, **_NO_RESUME_STATE)
    )
    cancelled = rowcount(result) == 1
    if cancelled:
        webhooks.owe(session, [job_id])
    session.commit()
    return cancelled


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
                attempts_without_progress() >= settings.job_max_attempts,
            )
            .values(
                status=JobStatus.failed,
                finished_at=now,
                preview_png=None,
                **_NO_RESUME_STATE,
                error=f"the worker stopped responding during {settings.job_max_attempts} attempts in a row "
                "that made no progress",
            )
        )
        if rowcount(failed) == 1:
            webhooks.owe(session, [job_id])
        else:
            requeued = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == JobStatus.running, Job.heartbeat_at < stale_before)
                .values(
                    status=JobStatus.queued,
                    enqueued_at=now,
                    error="the worker running this job stopped responding; re-queued",
                )
            )
            if rowcount(requeued) == 1:
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
        if rowcount(res) == 1:
            claimed.append(job_id)
    webhooks.owe_finished_batches(session)  # a batch whose last two photos finished at the same moment
    session.commit()
    sent = enqueue(session, claimed)  # a send that fails is left for the next sweep
    if sent:
        log.info("sweeper re-queued %d job(s)", len(sent))
    return sent


# A job that no user study uses (a study's colorizations are kept while it exists)
NOT_A_STIMULUS = Job.id.not_in(select(Stimulus.job_id).where(Stimulus.job_id.is_not(None)))


def delete_jobs(
    session: Session, job_ids: Sequence[str], *, still: ColumnElement[bool] | None = None
) -> Freed:
    """Delete finished jobs and every image only they used (the caller commits).

    Jobs that are study stimuli are kept while their study exists; images that a remaining job or a study
    uses are kept. Queued or running jobs are never deleted here (cancel them first). ``still``: a condition
    the DELETE itself checks again (retention's expiry: a preview kept since it was chosen stays).
    """
    rows = session.execute(
        select(Job.id, Job.input_image_id, Job.reference_image_id, Job.result_image_id).where(
            Job.id.in_(list(job_ids)),
            Job.status.in_(FINISHED_STATUSES),
            NOT_A_STIMULUS,
        )
    ).all()
    if not rows:
        return Freed()
    ids = [r.id for r in rows]
    candidates = {i for r in rows for i in r[1:] if i is not None}
    condition = and_(Job.id.in_(ids), Job.status.in_(FINISHED_STATUSES))
    deleted = session.execute(delete(Job).where(condition if still is None else and_(condition, still)))
    freed = delete_unused_images(session, candidates)  # those a job kept meanwhile still uses stay
    freed.jobs = rowcount(deleted)
    return freed


FreedOrNone = TypeVar("FreedOrNone", bound=Freed | None)


def commit_deletion(session: Session, deletion: Callable[[], FreedOrNone], what: str) -> FreedOrNone:
    """Run ``deletion`` (rows, then the images only they used) and commit. An image that got a new user
    meanwhile fails the commit: roll back and run it again, up to three times. ``deletion`` returning None
    means there was nothing to delete: rolled back."""
    for _attempt in range(3):
        try:  # PostgreSQL checks the foreign keys at the DELETE itself, SQLite at the commit
            freed = deletion()
            if freed is None:
                session.rollback()
                return freed
            session.commit()
        except IntegrityError:
            session.rollback()
            continue
        return freed
    # Three new users racing three attempts: a refusal to retry, not a 500.
    raise UserError(409, f"could not {what}: its photos were being reused meanwhile; try again")


def any_stimulus(session: Session, job_ids: Sequence[str]) -> bool:
    """Whether one of the jobs is a stimulus of a user study: kept while the study exists, neither cancelled
    nor deleted through the job, batch or comparison API."""
    in_study = select(func.count()).select_from(Stimulus).where(Stimulus.job_id.in_(list(job_ids)))
    return bool(session.scalar(in_study))


KEPT_FOR_STUDY = "this job is part of a user study and is kept while the study exists"


def is_maker(maker: str | None, client: str | None) -> bool:
    """Whether ``client`` (the request's hashed ``colorlab_client`` cookie) made a job, batch or comparison
    whose ``maker`` is its stored client. A shared link views; only its maker may cancel, delete or keep it,
    and only its maker sees the batch, comparison, earlier job and webhook it belongs to."""
    return maker is not None and client is not None and hmac.compare_digest(maker, client)


def require_maker(maker: str | None, client: str | None, what: str) -> None:
    """403 unless ``client`` made it (see :func:`is_maker`)."""
    if not is_maker(maker, client):
        raise UserError(
            403,
            f"only the browser or program that made this {what} can change it: it sends the "
            f"`colorlab_client` cookie the {what} was made with (a shared link can view it, download it "
            "and colorize the photo again as your own)",
        )


def cancel_one(session: Session, job_id: str) -> None:
    """`POST /jobs/{id}/cancel`: cancel the job if it is queued or running; nothing for a finished one, so a
    request sent again does what the first did. 409 for an unfinished study stimulus (the study needs it)."""
    if cancel_would_break_a_study(session, job_id):
        raise UserError(409, KEPT_FOR_STUDY)
    cancel(session, job_id)


def cancel_would_break_a_study(session: Session, job_id: str) -> bool:
    unfinished = session.scalar(select(Job.status).where(Job.id == job_id)) not in FINISHED_STATUSES
    return unfinished and any_stimulus(session, [job_id])


def delete_one(session: Session, job_id: str) -> None:
    """`DELETE /jobs/{id}`: cancel the job if it is still queued or running (its worker stops at its next
    report), then delete it with the images only it used. 409 for a study stimulus; 404 when another DELETE
    of the same job got there first (a request sent again finds it gone)."""
    if any_stimulus(session, [job_id]):
        raise UserError(409, KEPT_FOR_STUDY)
    cancel(session, job_id)  # commits; a no-op for a finished job
    if delete_finished(session, job_id) is None:
        raise UserError(409, KEPT_FOR_STUDY)


def cancel_together(session: Session, jobs: Sequence[Job]) -> None:
    """`POST /batches/{id}/cancel` and `POST /compare/{id}/cancel`: cancel those of ``jobs`` still queued or
    running and keep the finished ones. 409, with nothing changed, when one still to finish is a study's."""
    unfinished = [j.id for j in jobs if j.status not in FINISHED_STATUSES]
    if any_stimulus(session, unfinished):
        raise UserError(409, "some of these jobs are stimuli of a user study, kept while the study exists")
    for job_id in unfinished:
        cancel(session, job_id)  # commits; a no-op for one that finished meanwhile


def delete_finished(session: Session, job_id: str) -> Freed | None:
    """A finished job deleted with its images (:func:`delete_one`); None when it is a study stimulus.
    404 when it is gone (another DELETE of the same job got there first)."""

    def deletion() -> Freed | None:
        freed = delete_jobs(session, [job_id])
        return freed if freed.jobs else None

    freed = commit_deletion(session, deletion, "DELETE /jobs/{id}")
    if freed is None and session.get(Job, job_id, populate_existing=True) is None:
        raise UserError(404, "no such job (it was deleted)")
    return freed


def delete_together(session: Session, jobs: Sequence[Job], batch: Batch | None = None) -> Freed:
    """`DELETE /batches/{id}` and `DELETE /compare/{id}`: cancel those of ``jobs`` still queued or running
    (their worker stops at its next report), then delete them all with every image only they used, and the
    batch row. 409, with nothing changed, when one of them is a stimulus of a user study."""
    job_ids = [j.id for j in jobs]
    if any_stimulus(session, job_ids):
        raise UserError(409, "some of these jobs are stimuli of a user study, kept while the study exists")
    for job_id in job_ids:
        cancel(session, job_id)  # commits; a no-op for a finished job

    def deletion() -> Freed:
        freed = delete_jobs(session, job_ids)
        if batch is not None:
            session.execute(delete(Batch).where(Batch.id == batch.id))
        return freed

    return commit_deletion(session, deletion, "delete a batch or comparison")


def purge_expired(
    session: Session, settings: Settings, now: datetime | None = None, batch: int = 500
) -> Freed:
    """Retention: delete finished jobs older than RETAIN_DONE_DAYS, failed or cancelled ones older than
    RETAIN_FAILED_DAYS, "Fix colours" previews never kept older than PREVIEW_RETAIN_HOURS, and the images only
    they used. Study stimuli stay while their study exists."""
    now = now or utcnow()
    done_before = now - timedelta(days=settings.retain_done_days)
    failed_before = now - timedelta(days=settings.retain_failed_days)
    expired = and_(
        or_(
            and_(Job.status == JobStatus.done, Job.finished_at < done_before),
            and_(Job.status.in_([JobStatus.failed, JobStatus.cancelled]), Job.finished_at < failed_before),
            # a "Fix colours" preview never kept, made before PREVIEW_RETAIN_HOURS: its page is long gone
            and_(
                Job.fix_preview.is_(True),
                Job.status.in_(FINISHED_STATUSES),
                Job.created_at < now - timedelta(hours=settings.preview_retain_hours),
            ),
        ),
        # a study's colorizations stay while it exists: left out here, or 500 of them would fill every page
        NOT_A_STIMULUS,
    )
    total = Freed()
    after = ""  # paged by id: a page that cannot be deleted now is passed, never fetched again and again
    while True:
        ids = list(
            session.scalars(select(Job.id).where(expired, Job.id > after).order_by(Job.id).limit(batch))
        )
        if not ids:
            break
        after = ids[-1]
        try:
            freed = delete_jobs(session, ids, still=expired)
            session.commit()
        except IntegrityError:  # an image got a new user meanwhile: keep it, retry on the next round
            session.rollback()
            continue
        total += freed
    if total.jobs:
        log.info("retention freed %s", total)
    # a batch whose photos are all gone (each deleted or expired), once it is as old as a finished job kept
    session.execute(
        delete(Batch).where(
            Batch.created_at < done_before, ~select(Job.id).where(Job.batch_id == Batch.id).exists()
        )
    )
    forget_idempotency_keys(session, now)
    session.commit()
    return total


IDEMPOTENCY_HOURS = 24  # how long an upload's Idempotency-Key record is kept (backend.idempotency)


def forget_idempotency_keys(session: Session, now: datetime | None = None) -> int:
    """Delete the uploads' Idempotency-Key records older than IDEMPOTENCY_HOURS (the caller commits)."""
    before = (now or utcnow()) - timedelta(hours=IDEMPOTENCY_HOURS)
    result = session.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < before))
    return rowcount(result)


# -- reading ---------------------------------------------------------------------------------------------
def group_jobs(session: Session, group_id: str) -> list[Job]:
    """The jobs of one comparison (none for an id that is not one)."""
    if not is_valid_id(group_id):
        return []
    return list(session.scalars(select(Job).where(Job.group_id == group_id)))


@dataclass(frozen=True)
class HistoryEntry:
    """One card of a browser's history: a job, or the jobs of one batch or one comparison together."""

    kind: Literal["job", "batch", "comparison"]
    id: str  # the job's, the batch's or the comparison's
    first_jobs: list[Job]  # oldest first, at most HISTORY_FIRST_JOBS (the card's mosaic)
    counts: dict[str, int]  # jobs per status
    newest: datetime  # when its latest job was made

    @property
    def total(self) -> int:
        return sum(self.counts.values())


HISTORY_FIRST_JOBS = 4


def client_history(
    session: Session, client: str, limit: int = 100, offset: int = 0
) -> tuple[list[HistoryEntry], int]:
    """One page of what was started from one browser (its hashed cookie), newest first, and how many
    entries there are in all. A batch's or a comparison's jobs make one entry (a batch of 200 photos would
    otherwise fill pages), placed by its newest job; a batch or comparison of one job is that job. Three
    queries whatever the batches' sizes: the page's entries, their counts per status, their first jobs."""
    key = func.coalesce(Job.batch_id, Job.group_id, Job.id)
    mine = and_(Job.client == client, Job.fix_preview.is_(False))  # a preview shows once kept
    total = session.scalar(select(func.count(func.distinct(key))).where(mine)) or 0
    newest = func.max(Job.created_at)
    page = session.execute(
        select(key, newest).where(mine).group_by(key).order_by(newest.desc(), key).limit(limit).offset(offset)
    ).all()
    keys = [k for k, _ in page]
    counts: dict[str, dict[str, int]] = {k: {} for k in keys}
    for k, status, n in session.execute(
        select(key, Job.status, func.count()).where(mine, key.in_(keys)).group_by(key, Job.status)
    ):
        counts[k][str(status)] = n
    place = func.row_number().over(partition_by=key, order_by=(Job.created_at, Job.id)).label("place")
    ranked = select(Job.id, place).where(mine, key.in_(keys)).subquery()
    first_ids = select(ranked.c.id).where(ranked.c.place <= HISTORY_FIRST_JOBS)
    first: dict[str, list[Job]] = {k: [] for k in keys}
    for job in session.scalars(select(Job).where(Job.id.in_(first_ids)).order_by(Job.created_at, Job.id)):
        first[job.batch_id or job.group_id or job.id].append(job)
    entries = []
    for k, latest in page:
        jobs, by_status = first[k], counts[k]
        if sum(by_status.values()) == 1:
            entries.append(HistoryEntry("job", jobs[0].id, jobs, by_status, latest))
        else:
            kind: Literal["batch", "comparison"] = "batch" if jobs[0].batch_id else "comparison"
            entries.append(HistoryEntry(kind, k, jobs, by_status, latest))
    return entries, total
