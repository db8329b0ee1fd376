"""API shapes (Pydantic), and the one place each is built from the database rows.

Kept apart from the ORM tables on purpose: ``job_out`` is the JSON form of a job everywhere (the API, the
compare view, the job page and the history), ``batch_out`` of a batch, ``comparison_out`` of a comparison.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from backend import method_views
from backend.models import Batch, Job, JobStatus, WebhookDelivery
from worker.colorizers.method_info import MethodInfo


class ParamOut(BaseModel):
    name: str
    type: str
    default: Any
    description: str
    minimum: float | None = None
    maximum: float | None = None
    choices: list[str] = []
    ends: list[str] = Field([], description="Plain-words labels of a slider's two ends (minimum, maximum).")


class PresetOut(BaseModel):
    name: str = Field(examples=["balanced"])
    label: str
    summary: str
    options: dict[str, Any]
    default: bool = Field(description="The preset chosen for you (the upload page starts on it).")
    expected_seconds: float = Field(
        description="Expected compute time on this server for a typical photo (from recent jobs)."
    )
    over_time_limit: bool = Field(
        False,
        description="The expected time is more than the server's time limit for a job: an iterative job "
        "stops at the limit with the colours it has reached (its `iterations.run` then says how far it got).",
    )


class MethodOut(BaseModel):
    name: str = Field(examples=["cnn"])
    title: str
    summary: str = Field(description="One line in plain words: what a person gets.")
    description: str
    params: list[ParamOut]
    needs_reference: bool
    iterative: bool
    batchable: bool
    available: bool
    unavailable_reason: str | None = Field(
        None, examples=["weights not fetched: run `colorlab weights fetch eccv16`"]
    )
    paper: str = ""
    default: bool = Field(False, description="The method used when a request names none.")
    presets: list[PresetOut] = []
    expected_seconds: float = Field(
        description="Expected compute time of one job with the default options, from recent jobs."
    )
    time_limit_seconds: int = Field(
        3600, description="The server's time limit for a job (JOB_TIME_LIMIT); an iterative job stops there."
    )
    admin_hint: str | None = Field(
        None, description="For the administrator: the command that makes an unavailable method available."
    )


class JobCreated(BaseModel):
    id: str = Field(examples=["3q2kQy0m7sV9b1cXw8ZtJg"])
    status: JobStatus = Field(examples=["queued"])
    status_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg"])
    result_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg/result.png"])
    page_url: str = Field(examples=["/jobs/3q2kQy0m7sV9b1cXw8ZtJg/view"])


class ProgressOut(BaseModel):
    fraction: float = Field(0.0, ge=0, le=1)
    step: int | None = None
    total: int | None = None
    message: str | None = None
    losses: dict[str, float] = {}
    resumed_from: int | None = Field(
        None,
        description="Iterations an earlier attempt ran before its worker stopped (a redeploy, a crash): this "
        "attempt went on from there, from the state saved then (RESUME_STATE_INTERVAL).",
    )


class JobUrls(BaseModel):
    page: str
    input: str
    original: str
    reference: str | None = None
    result: str | None = None
    preview: str | None = None
    thumb: str | None = None  # small JPEG preview: of the result when there is one, else of the input


class QueueOut(BaseModel):
    lane: str = Field(examples=["fast"], description="fast (feed-forward) or iterative (exemplar).")
    ahead: int = Field(description="Queued jobs ahead of this one in its lane.")
    estimated_start: datetime | None = None
    estimated_finish: datetime | None = None
    estimated_run_seconds: float | None = None


class IterationsOut(BaseModel):
    run: int = Field(description="Iterations actually run so far (all of them once the job is done).")
    planned: int


WEBHOOK_FIELD = (
    "A URL (http or https) this server POSTs to once the job has finished, failed or been cancelled: the "
    "JSON of its status URL in an envelope, signed per Standard Webhooks (README: Webhooks)."
)


class WebhookOut(BaseModel):
    url: str
    state: str = Field(
        examples=["delivered"],
        description="`waiting` (for the job or batch to finish), `pending` (a call due, or a retry), "
        "`delivered` (the receiver answered 2xx) or `failed` (given up, or 410 Gone).",
    )
    attempts: int = 0
    last_status: int | None = Field(None, description="The receiver's last HTTP status.")
    last_error: str | None = Field(None, description="Why the last attempt failed.")
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None


def webhook_out(url: str | None, delivery: WebhookDelivery | None) -> WebhookOut | None:
    if url is None:
        return None
    if delivery is None:
        return WebhookOut(url=url, state="waiting")
    return WebhookOut(
        url=delivery.url,
        state=delivery.state,
        attempts=delivery.attempts,
        last_status=delivery.last_status,
        last_error=delivery.last_error,
        next_attempt_at=delivery.next_attempt_at,
        delivered_at=delivery.delivered_at,
    )


class JobOut(BaseModel):
    id: str
    method: str
    method_title: str
    source_name: str | None = Field(None, description="The uploaded file's name (sanitised).")
    download_name: str = Field(
        description="File name of the result download: <original stem>-<method>.png; a re-run's adds "
        "-<the first 6 characters of its id>."
    )
    owned: bool = Field(
        True,
        description="Whether this request comes from the job's maker (the `colorlab_client` cookie it was "
        "made with). Only the maker may cancel, delete or keep it and sees its `batch_id`, `group_id`, "
        "`rerun_of` and `webhook`; a shared link gets them as null.",
    )
    batch_id: str | None = None
    rerun_of: str | None = Field(
        None, description="The job this one re-ran with other options (POST /jobs/{id}/rerun), if any."
    )
    fix_preview: bool = Field(
        False,
        description='A "Fix colours" preview not kept yet (POST /jobs/{id}/rerun with `fix_preview=true`): '
        "out of the history until POST /jobs/{id}/keep, deleted after PREVIEW_RETAIN_HOURS if never kept.",
    )
    params: dict[str, Any]
    status: JobStatus = Field(examples=["running"])
    progress: ProgressOut
    attempts: int
    error: str | None = None
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    queue_seconds: float | None = None
    run_seconds: float | None = None
    width: int
    height: int
    has_ground_truth: bool
    metrics: dict[str, float | None] | None = Field(
        None, description="Quality against the colour original (eq. 9 accuracy, AuC, PSNR, SSIM, CF)."
    )
    group_id: str | None = Field(None, description="The comparison this job belongs to, if any.")
    iterations: IterationsOut | None = Field(None, description="Iterative methods only.")
    queue: QueueOut | None = Field(None, description="Unfinished jobs: position in the lane and estimates.")
    webhook: WebhookOut | None = Field(None, description="The webhook called once the job has finished.")
    urls: JobUrls


class ReferenceOut(BaseModel):
    id: str
    url: str
    label: str
    source: str = Field(examples=["upload", "example"])


class ErrorOut(BaseModel):
    detail: str = Field(
        examples=["the photo: not a supported image: the content is not one of PNG, JPEG, ..."]
    )
    field: str | None = Field(
        None,
        description="The request field the refusal is about, where it is one file (`image`, `reference`).",
    )


Responses = dict[int | str, dict[str, Any]]  # a route's OpenAPI `responses`


def _header(description: str) -> dict[str, Any]:
    return {"description": description, "schema": {"type": "string"}}


# The headers clients rely on, documented where they come (OpenAPI `headers`).
ALLOW = {"Allow": _header("The methods this path takes, e.g. `GET, HEAD, DELETE`.")}
RETRY_AFTER = {"Retry-After": _header("Seconds to wait before trying again.")}
LOCATION = {"Location": _header("The new resource's URL (its `status_url`).")}
_ETAG = {"ETag": _header("Changes only with the bytes: send it back in `If-None-Match` for a 304.")}


def errors(*codes: int) -> Responses:
    """The refusals a route answers with, each a UserError's ``{"detail": ...}``. Every route may also answer
    405 (another method on its path, named in ``Allow``) and 503 (the database is away, ``Retry-After``)."""
    headers = {405: ALLOW, 429: RETRY_AFTER, 503: RETRY_AFTER}
    return {
        code: {"model": ErrorOut, **({"headers": headers[code]} if code in headers else {})}
        for code in sorted({*codes, 405, 503})
    }


# An upload (POST /colorize, /jobs/{id}/rerun, /batches, /compare): 400 malformed multipart or an empty file,
# 404 an unknown `reference_id` (or job), 408 a stalled body, 409 method unavailable, 413 too large, 415 not
# an image, 422 a form or option that cannot be used, 429 over COLORIZE_RATE or PHOTO_BUDGET.
UPLOAD_ERRORS = errors(400, 404, 408, 409, 413, 415, 422, 429)


def queued(description: str) -> Responses:
    """The 202 of an upload, with its ``Location`` header."""
    return {202: {"description": description, "headers": LOCATION}}


def file_responses(
    description: str, *media_types: str, etag: bool = True, disposition: bool = False
) -> Responses:
    """The 200 of a route that answers a file (its types, binary) and, when it has an ``ETag``, the 304 that
    answers a matching ``If-None-Match``. Use with ``response_class=Response``: no JSON 200 is implied."""
    # A stored image never changes under its URL; a zip or a live preview is made afresh each time.
    cache = "`private, max-age=31536000, immutable`" if etag else "`no-store`"
    headers = {"Cache-Control": _header(cache)} | (_ETAG if etag else {})
    if disposition:
        headers["Content-Disposition"] = _header(
            "The download's file name (`filename` in ASCII and `filename*` in UTF-8, RFC 6266)."
        )
    binary = {"schema": {"type": "string", "format": "binary"}}
    out: Responses = {
        200: {"description": description, "content": dict.fromkeys(media_types, binary), "headers": headers}
    }
    if etag:
        out[304] = {
            "description": "Not Modified: `If-None-Match` named the current ETag (no body).",
            "headers": headers,
        }
    return out


class RejectedOut(BaseModel):
    name: str
    detail: str


class BatchItemOut(BaseModel):
    job_id: str
    name: str | None
    status: JobStatus
    progress: float
    error: str | None = None
    urls: dict[str, str | None]


class BatchOut(BaseModel):
    id: str
    method: str
    method_title: str
    params: dict[str, Any]
    created_at: datetime
    total: int = Field(description="Photos accepted (one job each).")
    counts: dict[str, int] = Field(description="Jobs per status.")
    progress: float = Field(description="Share of the accepted photos that are finished (0..1).")
    finished: bool
    items: list[BatchItemOut]
    rejected: list[RejectedOut] = Field(description="Photos refused at upload, with the reason.")
    owned: bool = Field(
        True, description="Whether this request comes from its maker: only then may it be deleted."
    )
    webhook: WebhookOut | None = Field(
        None, description="The webhook called once every photo has finished (shown to its maker only)."
    )
    urls: dict[str, str]


class BatchCreated(BaseModel):
    id: str
    status_url: str
    page_url: str
    results_url: str
    accepted: int
    rejected: list[RejectedOut]


class ComparisonCreated(BaseModel):
    id: str
    status_url: str = Field(examples=["/compare/Jx1…"])
    page_url: str
    results_url: str = Field(description="Every finished result as one zip (as a batch's `results_url`).")
    jobs: list[str]


class ComparisonOut(BaseModel):
    id: str
    width: int
    height: int
    has_ground_truth: bool
    input_url: str
    original_url: str
    finished: bool
    owned: bool = Field(
        True, description="Whether this request comes from its maker: only then may it be deleted."
    )
    jobs: list[JobOut]


# -- built from the rows ----------------------------------------------------------------------------------
def job_created(job_id: str) -> JobCreated:
    """The answer to a request that queued one job (202)."""
    return JobCreated(
        id=job_id,
        status="queued",
        status_url=f"/jobs/{job_id}",
        result_url=f"/jobs/{job_id}/result.png",
        page_url=f"/jobs/{job_id}/view",
    )


def result_stem(source_name: str | None, job_id: str) -> str:
    """The stem of a result's file name: the upload's own stem, made safe for any file system."""
    stem = (source_name or "").rsplit(".", 1)[0] if "." in (source_name or "")[1:] else (source_name or "")
    safe = re.sub(r"[^\w.-]+", "-", stem).strip(".-_")[:100]
    return safe or f"photo-{job_id[:8]}"


MAX_ZIP_RESULTS = 500  # GET /results.zip: results in one zip (the history says so before asking)


def download_name(job: Job, ext: str = "png") -> str:
    """``<original stem>-<method>.png``: the file name of a job's result download; a re-run (other options,
    colour hints) adds the start of its id, so that versions of one photo do not overwrite each other."""
    version = f"-{job.id[:6]}" if job.rerun_of else ""
    return f"{result_stem(job.source_name, job.id)}-{job.method}{version}.{ext}"


def _seconds(a: datetime | None, b: datetime | None) -> float | None:
    if a is None or b is None:
        return None
    return round(max((b - a).total_seconds(), 0.0), 3)


def _iterations(info: MethodInfo | None, job: Job) -> IterationsOut | None:
    if info is None or info.planned_iterations is None:
        return None
    detail = job.progress_detail or {}
    planned = int(detail.get("total") or info.iterations_for(job.params or {}) or 0)
    run = int(detail.get("step") or 0) or (planned if job.status == JobStatus.done else 0)
    return IterationsOut(run=run, planned=planned)


def job_out(job: Job, queue: dict[str, Any] | None = None, *, owned: bool = True) -> JobOut:
    """The JSON form of a job; ``queue`` (``backend.estimates.queue_info``) when the caller computed it.
    ``owned``: asked by its maker; anyone else (a shared link) sees the job alone, not its batch, comparison,
    earlier job or webhook."""
    info = method_views.get_method(job.method)
    detail = job.progress_detail or {}
    base = f"/jobs/{job.id}"
    running = job.status == JobStatus.running
    preview_v = int(job.preview_at.timestamp() * 1000) if job.preview_at else 0
    return JobOut(
        id=job.id,
        method=job.method,
        method_title=info.title if info else job.method,
        source_name=job.source_name,
        download_name=download_name(job),
        owned=owned,
        batch_id=job.batch_id if owned else None,
        rerun_of=job.rerun_of if owned else None,
        fix_preview=bool(job.fix_preview),
        params=job.params or {},
        status=job.status,
        progress=ProgressOut(
            fraction=1.0 if job.status == JobStatus.done else max(0.0, min(1.0, job.progress or 0.0)),
            step=detail.get("step"),
            total=detail.get("total"),
            message=detail.get("message"),
            losses=detail.get("losses") or {},
            resumed_from=detail.get("resumed_from"),
        ),
        attempts=job.attempts,
        error=job.error if job.status in (JobStatus.failed, JobStatus.queued) else None,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        queue_seconds=_seconds(job.created_at, job.started_at),
        run_seconds=job.run_seconds,
        width=job.input_image.width,
        height=job.input_image.height,
        has_ground_truth=job.input_image.is_color,
        metrics=job.metrics,
        group_id=job.group_id if owned else None,
        iterations=_iterations(info, job),
        queue=QueueOut.model_validate(queue) if queue is not None else None,
        webhook=webhook_out(job.webhook_url, job.webhook_delivery) if job.webhook_url and owned else None,
        urls=JobUrls(
            page=f"{base}/view",
            input=f"{base}/input.png",
            original=f"{base}/original.png",
            reference=f"{base}/reference.png" if job.reference_image_id else None,
            result=f"{base}/result.png" if job.result_image_id else None,
            thumb=f"{base}/thumb.jpg?of={'result' if job.result_image_id else 'input'}",
            preview=f"{base}/preview.png?v={preview_v}" if running and job.preview_at else None,
        ),
    )


def batch_out(batch: Batch, jobs: Sequence[Job], *, owned: bool = True) -> BatchOut:
    """A batch with its jobs (in submission order): per-photo status and the overall progress. ``owned``:
    asked by its maker (only then may it be deleted, and only then is its webhook shown)."""
    counts: dict[str, int] = {}
    items = []
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
        base = f"/jobs/{job.id}"
        items.append(
            BatchItemOut(
                job_id=job.id,
                name=job.source_name,
                status=job.status,
                progress=1.0 if job.status == JobStatus.done else max(0.0, min(1.0, job.progress or 0.0)),
                error=job.error if job.status == JobStatus.failed else None,
                urls={
                    "page": f"{base}/view",
                    "input": f"{base}/input.png",
                    "result": f"{base}/result.png" if job.result_image_id else None,
                    "thumb": f"{base}/thumb.jpg?of={'result' if job.result_image_id else 'input'}",
                },
            )
        )
    finished = sum(n for status, n in counts.items() if JobStatus(status).finished)
    info = method_views.get_method(batch.method)
    return BatchOut(
        id=batch.id,
        method=batch.method,
        method_title=info.title if info else batch.method,
        params=batch.params or {},
        created_at=batch.created_at,
        total=len(jobs),
        counts=counts,
        progress=round(finished / len(jobs), 4) if jobs else 1.0,
        finished=finished == len(jobs),
        items=items,
        rejected=[RejectedOut.model_validate(r) for r in batch.rejected or []],
        owned=owned,
        webhook=(
            webhook_out(batch.webhook_url, batch.webhook_delivery) if batch.webhook_url and owned else None
        ),
        urls={"page": f"/batches/{batch.id}/view", "results_zip": f"/batches/{batch.id}/results.zip"},
    )


def comparison_out(group_id: str, jobs: Sequence[Job], *, owned: bool = True) -> ComparisonOut:
    """A comparison: its jobs (at least one) in the methods' display order, and the photo they share.
    ``owned``: asked by its maker (only then may it be deleted)."""
    order = {m.name: i for i, m in enumerate(method_views.public_methods())}
    rows = sorted(jobs, key=lambda j: order.get(j.method, len(order)))
    first = rows[0]
    return ComparisonOut(
        id=group_id,
        width=first.input_image.width,
        height=first.input_image.height,
        has_ground_truth=first.input_image.is_color,
        input_url=f"/jobs/{first.id}/input.png",
        original_url=f"/jobs/{first.id}/original.png",
        finished=all(j.state.finished for j in rows),
        owned=owned,
        jobs=[job_out(j, owned=owned) for j in rows],
    )
