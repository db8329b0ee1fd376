"""Batches: many photos, one method and options (`POST /batches`), followed together, downloaded as a zip.

Every photo is validated like a single upload; a bad one is reported in the batch (``rejected``) and the
rest go on. The batch and all its jobs are committed in one transaction before any job is sent to the
broker, so a restart of any process loses nothing (the sweeper sends what the broker lost).
"""

from __future__ import annotations

import io
import struct
import time
import zipfile
from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

import anyio.to_thread
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from backend import batch_uploads, idempotency, method_choice, webhooks
from backend import job_lifecycle as lifecycle
from backend.config import Settings
from backend.db import session_scope
from backend.deps import BatchDep, SessionDep, SettingsDep, batch_or_404
from backend.errors import UserError
from backend.images import png_to_jpeg
from backend.models import Image, Job, JobStatus, is_valid_id, new_id
from backend.ratelimit import photo_budget
from backend.schemas import (
    MAX_ZIP_RESULTS,
    UPLOAD_ERRORS,
    BatchCreated,
    BatchOut,
    RejectedOut,
    batch_out,
    download_name,
    errors,
    file_responses,
    queued,
)
from backend.uploads import decode_limiter, has_file, read_reference
from backend.web import client_of, content_disposition, head_only

router = APIRouter(tags=["batches"])


@router.post(
    "/batches",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BatchCreated,
    responses={**queued("Queued: follow `status_url` (also in `Location`)."), **UPLOAD_ERRORS},
    summary="Queue many photos with one method",
    description=(
        "Multipart: `images` repeated (one file each), or one zip file as `images`; `method`, options (as "
        "in `POST /colorize`) and, for the reference methods (`unet-bins-reference`, the default when a "
        "reference comes without a method, and `exemplar`), one `reference` or `reference_id` for all: the "
        "same colours across related photos. At most "
        "`BATCH_MAX_PHOTOS` photos and `BATCH_MAX_BYTES` bytes. Each photo is validated like a single "
        "upload: a bad one is listed in `rejected` and the rest go on (422 when none is usable). The batch "
        "counts as one request against `COLORIZE_RATE` and each photo counts against `PHOTO_BUDGET`."
    ),
)
@idempotency.replayable
async def create_batch(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    images: Annotated[list[UploadFile], File(description="The photos (repeat the field), or one zip.")],
    method: Annotated[
        str | None,
        Form(
            description="Method name from GET /methods; default: the default one "
            "(with a reference: unet-bins-reference)."
        ),
    ] = None,
    reference: Annotated[
        UploadFile | None, File(description="Colour reference (unet-bins-reference, exemplar).")
    ] = None,
    reference_id: Annotated[str | None, Form(description="An earlier image id from GET /references.")] = None,
    options: Annotated[str | None, Form(description="Method options as JSON.")] = None,
    webhook: Annotated[
        str | None,
        Form(
            description="A URL (http or https) this server POSTs to once, when every photo of the batch has "
            "finished: the JSON of its status URL in an envelope, signed per Standard Webhooks."
        ),
    ] = None,
    idempotency_key: Annotated[
        str | None, Header(alias=idempotency.HEADER, description=idempotency.HEADER_DOC)
    ] = None,
) -> BatchCreated:
    form = await request.form()
    batch_uploads.refuse_image_field(form)
    info, params = method_choice.choose_with_reference(
        method, form, options, settings, has_file(reference), reference_id
    )
    webhook_url = webhooks.check_url(webhook, settings) if webhook is not None else None
    files = await batch_uploads.read_files(images, settings)
    # Spent before any photo is decoded; given back if the batch is refused as a whole below
    with photo_budget(request, settings, len(files)):
        accepted, rejected = await batch_uploads.validate(files, settings)
        client = client_of(request)
        ref = await read_reference(info, reference, reference_id, session, settings, client)
        new_jobs = [
            lifecycle.NewJob(info.name, params, image=photo, reference=ref, source_name=photo.filename)
            for photo in accepted
        ]
        batch_id = await run_in_threadpool(
            _create_and_enqueue, session, info.name, params, new_jobs, rejected, client, webhook_url
        )
    response.headers["Location"] = f"/batches/{batch_id}"
    return BatchCreated(
        id=batch_id,
        status_url=f"/batches/{batch_id}",
        page_url=f"/batches/{batch_id}/view",
        results_url=f"/batches/{batch_id}/results.zip",
        accepted=len(accepted),
        rejected=[RejectedOut(**r) for r in rejected],
    )


def _create_and_enqueue(
    session: Session,
    method: str,
    params: dict[str, Any],
    new_jobs: list[lifecycle.NewJob],
    rejected: list[dict[str, str]],
    client: str | None,
    webhook_url: str | None = None,
) -> str:
    """The batch and all its jobs in one transaction, then sent (blocking I/O: run in a thread)."""
    batch_id = new_id()

    def batch_row() -> None:  # made again if the jobs' transaction is retried
        lifecycle.create_batch(
            session,
            method=method,
            params=params,
            rejected=rejected,
            client=client,
            batch_id=batch_id,
            webhook_url=webhook_url,
        )

    lifecycle.create_and_enqueue(session, new_jobs, client=client, batch_id=batch_id, with_rows=batch_row)
    return batch_id


@router.get(
    "/batches/{batch_id}", response_model=BatchOut, responses=errors(404), summary="A batch's progress"
)
def get_batch(batch: BatchDep, request: Request, session: SessionDep) -> BatchOut:
    rows = session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.created_at, Job.id)).all()
    return batch_out(batch, rows, owned=lifecycle.is_maker(batch.client, client_of(request)))


@router.post(
    "/batches/{batch_id}/cancel",
    response_model=BatchOut,
    responses=errors(403, 404, 409),
    summary="Stop a batch: cancel its photos still to do, keep the finished ones",
    description="The photos still queued or running are cancelled; the finished ones stay, with their "
    "results and the batch's zip. The answer is the batch; a request sent again does no more than the first. "
    "409, with nothing changed, when a photo still to do is a stimulus of a user study. Only its maker may "
    "(403).",
)
def cancel_batch(batch: BatchDep, request: Request, session: SessionDep) -> BatchOut:
    client = client_of(request)
    lifecycle.require_maker(batch.client, client, "batch")
    lifecycle.cancel_together(session, session.scalars(select(Job).where(Job.batch_id == batch.id)).all())
    session.expire_all()
    rows = session.scalars(select(Job).where(Job.batch_id == batch.id).order_by(Job.created_at, Job.id)).all()
    return batch_out(batch, rows, owned=True)


@router.delete(
    "/batches/{batch_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403, 404, 409),
    summary="Delete a batch: cancel its unfinished photos, delete them all with their images",
    description="Afterwards the batch and its jobs answer 404. 409, with nothing changed, when one of its "
    "jobs is a stimulus of a user study. Only its maker may (see DELETE /jobs/{id}).",
)
def delete_batch(batch: BatchDep, request: Request, session: SessionDep) -> Response:
    lifecycle.require_maker(batch.client, client_of(request), "batch")
    rows = session.scalars(select(Job).where(Job.batch_id == batch.id)).all()
    lifecycle.delete_together(session, rows, batch)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


class _ZipStream(io.RawIOBase):
    """A write-only file that hands what zipfile writes to a generator, chunk by chunk (no seeking needed)."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.chunks.append(bytes(data))
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def take(self) -> bytes:
        out = b"".join(self.chunks)
        self.chunks.clear()
        return out


def _stored_data(image_id: str) -> bytes | None:
    with session_scope() as s:
        return s.scalars(select(Image.data).where(Image.id == image_id)).first()


ZipEntry = tuple[str, str, datetime | None]  # a result's image id, its file name, when its job finished


def _zip_info(name: str, finished: datetime | None) -> zipfile.ZipInfo:
    """A zip entry dated when its job finished: the DOS fields in this server's local time (as zip tools
    write them), and the exact moment in an extended-timestamp field (0x5455), which unzip tools read in
    the reader's own time zone. Made from the job, so the same jobs give the same zip."""
    if finished is None:
        return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    seconds = int(finished.timestamp())
    local = time.localtime(seconds)
    fields = (local.tm_year, local.tm_mon, local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec)
    info = zipfile.ZipInfo(name, date_time=fields if local.tm_year >= 1980 else (1980, 1, 1, 0, 0, 0))
    info.extra = struct.pack("<HHBl", 0x5455, 5, 1, seconds)  # flags 1: the modification time follows
    return info


async def _zip_results(
    entries: list[ZipEntry], fmt: str, quality: int, settings: Settings
) -> AsyncIterator[bytes]:
    """Stream a zip of (result image id, file name, finish time) entries, reading one image at a time; JPEGs
    are made in the decode pool (a 40 MP re-encoding holds ~1 GB: many zips at once must not take the
    memory)."""
    stream = _ZipStream()
    limiter = decode_limiter(settings)
    with zipfile.ZipFile(stream, "w", compression=zipfile.ZIP_STORED) as archive:  # PNG/JPEG: compressed
        for image_id, name, finished in entries:
            data = await run_in_threadpool(_stored_data, image_id)
            if data is None:  # deleted meanwhile
                continue
            if fmt == "jpg":
                data = await anyio.to_thread.run_sync(
                    png_to_jpeg, data, quality, settings.max_pixels, limiter=limiter
                )
            info = _zip_info(name, finished)
            await run_in_threadpool(archive.writestr, info, data)  # its CRC: milliseconds per MB
            yield stream.take()
    yield stream.take()


def _unique(names: Iterable[str]) -> list[str]:
    """Make file names unique inside one zip (holiday.png, holiday-2.png, ...)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        stem, _, ext = name.rpartition(".")
        n = seen.get(name.lower(), 0) + 1
        seen[name.lower()] = n
        out.append(name if n == 1 else f"{stem}-{n}.{ext}")
    return out


def _zip_response(
    request: Request,
    entries: list[ZipEntry],
    fmt: str,
    quality: int,
    settings: Settings,
    name: str,
    unfinished: int,
) -> Any:
    """The zip of ``entries``; 409 when there are none (with Retry-After while ``unfinished`` jobs may still
    bring one)."""
    if not entries and unfinished:
        raise UserError(409, "no finished results to download yet", headers={"Retry-After": "5"})
    if not entries:
        raise UserError(409, "none of these jobs has a result (they failed or were cancelled)")
    headers = {"Content-Disposition": content_disposition(name), "Cache-Control": "no-store"}
    if head_only(request):  # the headers alone: making the zip would read (and re-encode) every result
        return StreamingResponse(iter(()), media_type="application/zip", headers=headers)
    return StreamingResponse(
        _zip_results(entries, fmt, quality, settings), media_type="application/zip", headers=headers
    )


ZIP_RESPONSES = file_responses("The zip, streamed.", "application/zip", etag=False, disposition=True)
Format = Annotated[Literal["png", "jpg"], Query(description="png (lossless) or jpg.")]
Quality = Annotated[int, Query(ge=1, le=100, description="JPEG quality (format=jpg).")]


@router.get(
    "/batches/{batch_id}/results.zip",
    response_class=Response,
    responses={**ZIP_RESPONSES, **errors(404, 409, 422)},
    summary="The batch's finished results as one zip, named after the originals",
    description="`holiday-1962.jpg` becomes `holiday-1962-unet-bins.png` (or `.jpg` with `format=jpg`): "
    "named as every other download of a result. Photos still running are left out (download again later); "
    "409 while none is finished (with `Retry-After` while some are still to finish).",
)
def batch_results(
    batch_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    format: Format = "png",
    quality: Quality = 90,
) -> Any:
    # Not BatchDep: its 404 would come before the check of `format` and `quality`.
    batch = batch_or_404(session, batch_id)
    # One query for the finished jobs and those still to finish
    jobs = session.scalars(
        select(Job)
        .where(
            Job.batch_id == batch.id,
            Job.status.in_((JobStatus.done, JobStatus.queued, JobStatus.running)),
        )
        .order_by(Job.created_at, Job.id)
    ).all()
    done = [job for job in jobs if job.status == JobStatus.done and job.result_image_id is not None]
    unfinished = len(jobs) - sum(1 for job in jobs if job.status == JobStatus.done)
    names = _unique(download_name(job, format) for job in done)
    # `done` holds only jobs with a result; the check narrows the column's `str | None` for the types.
    entries = [
        (job.result_image_id, name, job.finished_at)
        for job, name in zip(done, names, strict=True)
        if job.result_image_id is not None
    ]
    suffix = "-jpg" if format == "jpg" else ""  # "Download all" and "All as JPEG" do not overwrite each other
    # a zip made while photos are still running says so in its name, and is not taken for the whole batch
    part = f"-{len(entries)}-done" if unfinished else ""
    zip_name = f"colorlab-batch-{batch.id[:8]}{part}{suffix}.zip"
    return _zip_response(request, entries, format, quality, settings, zip_name, unfinished)


@router.get(
    "/results.zip",
    response_class=Response,
    responses={**ZIP_RESPONSES, **errors(404, 409, 422)},
    summary="Several jobs' results as one zip (the history's multi-select download)",
    description="`id` repeated: job ids; `batch` and `comparison` repeated: every job of those batches and "
    "comparisons. Files are named `<original stem>-<method>.png` (or `.jpg`; a re-run's adds `-<the first "
    "6 characters of its id>`). Jobs not finished yet are "
    f"left out; at most {MAX_ZIP_RESULTS} results per zip.",
)
def jobs_results(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    id: Annotated[list[str] | None, Query(description="Job ids (repeat the parameter).")] = None,
    batch: Annotated[list[str] | None, Query(description="Batch ids (repeat the parameter).")] = None,
    comparison: Annotated[list[str] | None, Query(description="Comparison ids (repeat it).")] = None,
    format: Format = "png",
    quality: Quality = 90,
) -> Any:
    ids, batches, groups = (
        [i for i in dict.fromkeys(given or []) if is_valid_id(i)] for given in (id, batch, comparison)
    )
    if not (id or batch or comparison):
        raise UserError(422, "name the results to download: `id`, `batch` or `comparison` (each may repeat)")
    chosen = or_(Job.id.in_(ids), Job.batch_id.in_(batches), Job.group_id.in_(groups))
    rows = session.scalars(
        select(Job)
        .where(chosen, Job.result_image_id.is_not(None))
        .order_by(Job.created_at, Job.id)
        .limit(MAX_ZIP_RESULTS + 1)
    ).all()
    if len(rows) > MAX_ZIP_RESULTS:
        raise UserError(422, f"at most {MAX_ZIP_RESULTS} results per download: choose fewer")
    if not rows and session.scalar(select(func.count()).select_from(Job).where(chosen)) == 0:
        raise UserError(404, "none of these jobs, batches or comparisons exists (deleted, or a wrong id?)")
    order = {job_id: n for n, job_id in enumerate(ids)}
    rows = sorted(rows, key=lambda j: order.get(j.id, len(order)))  # the jobs named first, as named
    names = _unique(download_name(j, format) for j in rows)
    # As above: the query left out jobs without a result.
    entries = [
        (j.result_image_id, name, j.finished_at)
        for j, name in zip(rows, names, strict=True)
        if j.result_image_id is not None
    ]
    unfinished = 0
    if not entries:
        unfinished = (
            session.scalar(
                select(func.count()).where(chosen, Job.status.in_((JobStatus.queued, JobStatus.running)))
            )
            or 0
        )
    return _zip_response(request, entries, format, quality, settings, "colorlab-results.zip", unfinished)
