"""REST API: submit colorization jobs, follow them, fetch their images, list the methods."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    HTTPException,
    Query,
    Request,
    Response,
    UploadFile,
    status,
)
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from backend import catalogue, estimates, examples, jobs
from backend.config import Settings, get_settings
from backend.db import get_session
from backend.images import ImageError, decode, encode_jpeg, encode_png, gray_png
from backend.models import Image, Job, is_valid_id
from backend.ratelimit import SlidingWindow
from backend.schemas import ErrorOut, JobCreated, JobOut, MethodOut, ReferenceOut
from backend.web import client_of
from worker.colorizers.catalogue import MethodInfo, ParamError

router = APIRouter(tags=["colorize"])
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (400, 404, 409, 413, 415, 422, 429, 503)
}
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
RESERVED_FIELDS = {"image", "images", "method", "reference", "reference_id", "options"}


@lru_cache
def _colorize_limit(per_minute: int) -> SlidingWindow:
    return SlidingWindow(per_minute, window=60.0)


@lru_cache
def _photo_budget(per_hour: int) -> SlidingWindow:
    return SlidingWindow(per_hour, window=3600.0)


def spend_photo_budget(request: Request, settings: Settings, photos: int) -> None:
    """Count ``photos`` against this client IP's hourly PHOTO_BUDGET (a batch spends one per photo)."""
    if not _photo_budget(settings.photo_budget).allow(request.client.host if request.client else "?", photos):
        raise HTTPException(
            429,
            f"too many photos: at most {settings.photo_budget} per hour from one client "
            f"(this request has {photos}); try again later",
            headers={"Retry-After": "600"},
        )


def upload_rate_limit(request: Request, settings: SettingsDep) -> None:
    """Dependency of every upload route: at most COLORIZE_RATE uploads per client IP per minute."""
    if not _colorize_limit(settings.colorize_rate).allow(request.client.host if request.client else "?"):
        raise HTTPException(
            429,
            f"too many uploads: at most {settings.colorize_rate} per minute; try again shortly",
            headers={"Retry-After": "60"},
        )


async def read_upload(upload: UploadFile, settings: Settings, what: str) -> jobs.Upload:
    """Read an uploaded file in chunks, refusing it as soon as it passes the size limit, and decode it."""
    limit = settings.max_upload_bytes
    chunks: list[bytes] = []
    total = 0
    while chunk := await upload.read(1 << 20):
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"the {what} is larger than the {limit:,}-byte limit")
        chunks.append(chunk)
    data = b"".join(chunks)
    try:
        decoded = await run_in_threadpool(decode, data, max_pixels=settings.max_pixels)
    except ImageError as exc:
        raise HTTPException(exc.status_code, f"{what}: {exc.detail}") from None
    return jobs.Upload(data=data, decoded=decoded, filename=upload.filename)


def _options(form: Any, options_json: str | None) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if options_json:
        try:
            parsed = json.loads(options_json)
        except json.JSONDecodeError as exc:
            raise HTTPException(422, f"options must be a JSON object: {exc.msg}") from None
        if not isinstance(parsed, dict):
            raise HTTPException(422, 'options must be a JSON object, e.g. {"iterations": 200}')
        raw.update(parsed)
    for key, value in form.multi_items():
        if key in RESERVED_FIELDS:
            continue
        if not isinstance(value, str):
            raise HTTPException(422, f"unexpected file field {key!r}")
        raw[key] = value
    return raw


def resolve_method(
    method: str, form: Any, options: str | None, settings: Settings
) -> tuple[MethodInfo, dict[str, Any]]:
    """The method and its checked options from an upload form (422 unknown/invalid, 409 unavailable)."""
    info = catalogue.get_method(method)
    if info is None:
        known = ", ".join(m.name for m in catalogue.public_methods())
        raise HTTPException(422, f"unknown method {method!r}; choose one of: {known}")
    try:
        params = catalogue.validate(info, _options(form, options))
    except ParamError as exc:
        raise HTTPException(422, str(exc)) from None
    reason = info.unavailable_reason(settings.weights_dir)
    if reason:
        raise HTTPException(409, f"method {method!r} is unavailable: {reason}")
    return info, params


def check_reference_given(info: MethodInfo, has_reference: bool, reference_id: str | None) -> None:
    """422 unless a method that needs a reference got one, and one that takes none got none."""
    if info.needs_reference and not has_reference and not reference_id:
        raise HTTPException(
            422,
            f"method {info.name!r} colors a photo from a colour reference image: upload one as `reference` "
            "or pick one from GET /references (`reference_id`)",
        )
    if not info.needs_reference and (has_reference or reference_id):
        raise HTTPException(422, f"method {info.name!r} takes no reference image")


async def load_reference(
    info: MethodInfo,
    reference: UploadFile | None,
    reference_id: str | None,
    session: Session,
    settings: Settings,
    client: str | None,
) -> jobs.Upload | Image | None:
    """The uploaded reference (validated like any upload) or the earlier/bundled one named by id."""
    ref: jobs.Upload | Image | None = None
    if reference is not None:
        ref = await read_upload(reference, settings, "reference")
    elif reference_id:
        ref = await run_in_threadpool(examples.resolve_reference, session, settings, reference_id, client)
        if ref is None:
            raise HTTPException(
                404, f"no reference image {reference_id!r} among your uploads or the examples"
            )
    if info.needs_reference and isinstance(ref, jobs.Upload) and not ref.decoded.is_color:
        raise HTTPException(422, "the reference image has no colour: the method copies colours from it")
    return ref


@router.post(
    "/colorize",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=ERRORS,
    dependencies=[Depends(upload_rate_limit)],
    summary="Queue a colorization job",
    description=(
        "Upload a photo (any common raster format; colour photos are grayed and kept as ground truth) and "
        "choose a method from `GET /methods`. Method options go either as a JSON object in `options` or as "
        "extra form fields named after the option. The `exemplar` method needs a colour `reference` image "
        "(or `reference_id` from `GET /references`). Answers 202 at once; follow `status_url`."
    ),
)
async def colorize(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The photo to colorize.")],
    method: Annotated[str, Form(description="Method name from GET /methods.", examples=["cnn"])],
    reference: Annotated[UploadFile | None, File(description="Colour reference (exemplar only).")] = None,
    reference_id: Annotated[str | None, Form(description="An earlier image id from GET /references.")] = None,
    options: Annotated[
        str | None, Form(description='Method options as JSON, e.g. {"iterations": 200}.')
    ] = None,
) -> JobCreated:
    info, params = resolve_method(method, await request.form(), options, settings)
    has_reference = reference is not None and bool(reference.filename or reference.size)
    check_reference_given(info, has_reference, reference_id)
    upload = await read_upload(image, settings, "image")
    spend_photo_budget(request, settings, 1)
    client = client_of(request)
    ref = await load_reference(
        info, reference if has_reference else None, reference_id, session, settings, client
    )
    job_id = await run_in_threadpool(_create_and_enqueue, session, method, params, upload, ref, client)
    response.headers["Location"] = f"/jobs/{job_id}"
    return JobCreated(
        id=job_id,
        status="queued",
        status_url=f"/jobs/{job_id}",
        result_url=f"/jobs/{job_id}/result.png",
        page_url=f"/jobs/{job_id}/view",
    )


def _create_and_enqueue(
    session: Session,
    method: str,
    params: dict[str, Any],
    upload: jobs.Upload,
    ref: jobs.Upload | Image | None,
    client: str | None,
) -> str:
    """Store the job, commit, and only then send its id to the broker (blocking I/O: run in a thread)."""
    job = jobs.create_job(session, method=method, params=params, image=upload, reference=ref, client=client)
    session.commit()
    jobs.enqueue(session, [job.id])
    return job.id


def _get_job(session: Session, job_id: str) -> Job:
    job = session.get(Job, job_id) if is_valid_id(job_id) else None
    if job is None:
        raise HTTPException(404, "no such job")
    return job


def job_out(job: Job, session: Session | None = None, settings: Settings | None = None) -> JobOut:
    """The JSON form of a job; with a session, an unfinished job also gets its place in its lane."""
    queue = estimates.queue_info(session, settings, job) if session is not None and settings else None
    return JobOut.model_validate(catalogue.job_dict(job, queue))


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=ERRORS,
    summary="Job status and progress",
    description="While the job waits or runs, `queue` says how many jobs are ahead of it in its lane and "
    "when it should start and finish (from the recent durations of its method on this server).",
)
def get_job(job_id: str, session: SessionDep, settings: SettingsDep) -> JobOut:
    return job_out(_get_job(session, job_id), session, settings)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses={204: {"description": "The finished job and its images were deleted."}, **ERRORS},
    summary="Cancel a queued or running job; delete a finished one",
    description="A queued or running job is cancelled (200 with the job). A finished job is deleted with "
    "its result and the uploaded images no other job uses (204); 409 when a user study uses it.",
)
def cancel_or_delete_job(job_id: str, session: SessionDep) -> Any:
    job = _get_job(session, job_id)
    if jobs.cancel(session, job_id):
        session.refresh(job)
        return job_out(job)
    try:
        jobs.delete_finished_job(session, job_id)
    except jobs.JobInUse:
        raise HTTPException(
            409, "this job's result is a stimulus of a user study; it cannot be deleted"
        ) from None
    return Response(status_code=204)


def _png(data: bytes, *, immutable: bool = True) -> Response:
    cache = "private, max-age=31536000, immutable" if immutable else "no-store"
    return Response(data, media_type="image/png", headers={"Cache-Control": cache})


def _image_bytes(session: Session, image_id: str) -> Image:
    image = session.scalars(select(Image).where(Image.id == image_id).options(undefer(Image.data))).one()
    return image


@router.get(
    "/jobs/{job_id}/result.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The colorized photo (full input resolution)",
)
def job_result(
    job_id: str,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[Literal["png", "jpg"], Query(description="png (lossless) or jpg.")] = "png",
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality (format=jpg).")] = 90,
    download: Annotated[bool, Query(description="Ask the browser to save the file.")] = False,
) -> Response:
    job = _get_job(session, job_id)
    if job.result_image_id is None:
        raise HTTPException(404, f"no result yet: the job is {job.status}")
    data = _image_bytes(session, job.result_image_id).data
    if format == "jpg":
        data = to_jpeg(data, quality, settings.max_pixels)
    response = Response(
        data,
        media_type="image/jpeg" if format == "jpg" else "image/png",
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )
    response.headers["Content-Disposition"] = content_disposition(
        catalogue.download_name(job, format), attachment=download
    )
    return response


def to_jpeg(png: bytes, quality: int, max_pixels: int) -> bytes:
    """A stored PNG result re-encoded as JPEG."""
    return encode_jpeg(decode(png, max_pixels=max_pixels).rgb, quality)


def content_disposition(filename: str, *, attachment: bool = True) -> str:
    """A Content-Disposition header for any file name: an ASCII fallback plus the UTF-8 name (RFC 6266)."""
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    kind = "attachment" if attachment else "inline"
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


@router.get(
    "/jobs/{job_id}/input.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The grayscale photo as the colorizer saw it",
)
def job_input(job_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    job = _get_job(session, job_id)
    image = _image_bytes(session, job.input_image_id)
    return _png(gray_png(decode(image.data, max_pixels=settings.max_pixels)))


@router.get(
    "/jobs/{job_id}/original.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The upload as stored (the ground truth when it is a colour photo)",
)
def job_original(job_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    job = _get_job(session, job_id)
    image = _image_bytes(session, job.input_image_id)
    return _png(encode_png(decode(image.data, max_pixels=settings.max_pixels).rgb, compress_level=1))


@router.get(
    "/jobs/{job_id}/reference.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The reference image of an exemplar job",
)
def job_reference(job_id: str, session: SessionDep, settings: SettingsDep) -> Response:
    job = _get_job(session, job_id)
    if job.reference_image_id is None:
        raise HTTPException(404, "this job has no reference image")
    image = _image_bytes(session, job.reference_image_id)
    return _png(encode_png(decode(image.data, max_pixels=settings.max_pixels).rgb, compress_level=1))


@router.get(
    "/jobs/{job_id}/preview.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="Live preview of a running iterative job",
)
def job_preview(job_id: str, session: SessionDep) -> Response:
    job = _get_job(session, job_id)
    preview = session.scalar(select(Job.preview_png).where(Job.id == job.id))
    if not preview:
        raise HTTPException(404, "no preview: the job is not running an iterative method right now")
    return _png(preview, immutable=False)


@router.get("/methods", response_model=list[MethodOut], summary="The colorization methods and their options")
def list_methods(settings: SettingsDep, session: SessionDep) -> list[MethodOut]:
    return [MethodOut.model_validate(m) for m in catalogue.methods_out(settings, session)]


@router.get("/references", response_model=list[ReferenceOut], summary="Reference images you can reuse")
def list_references(request: Request, session: SessionDep, settings: SettingsDep) -> list[ReferenceOut]:
    return [
        ReferenceOut.model_validate(r)
        for r in examples.list_references(session, settings, client_of(request))
    ]


@router.get(
    "/references/{ref_id}.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="A reference image (your earlier upload or a bundled example)",
)
def reference_image(ref_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    ref = examples.resolve_reference(session, settings, ref_id, client_of(request))
    if ref is None:
        raise HTTPException(404, "no such reference image")
    data = ref.data
    return _png(encode_png(decode(data, max_pixels=settings.max_pixels).rgb, compress_level=1))
