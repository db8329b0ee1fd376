"""REST API: submit colorization jobs, follow them, fetch their images, list the methods."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal
from urllib.parse import quote

import anyio
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

from backend import estimates, examples, jobs, method_views
from backend.config import Settings, get_settings
from backend.db import get_session, session_scope
from backend.images import (
    DecodedImage,
    ImageError,
    Renditions,
    decode,
    encode_jpeg,
    renditions,
    thumbnail_jpeg,
)
from backend.models import Image, Job, is_valid_id
from backend.ratelimit import SlidingWindow
from backend.schemas import ErrorOut, JobCreated, JobOut, MethodOut, ReferenceOut
from backend.web import client_address, client_of
from worker.colorizers.method_info import MethodInfo, ParamError, Unavailable

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
    if not _colorize_limit(settings.colorize_rate).allow(client_address(request)):
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
        decoded, made = await decode_upload(data, settings)
    except ImageError as exc:
        raise HTTPException(exc.status_code, f"{what}: {exc.detail}") from None
    return jobs.Upload(data=data, decoded=decoded, filename=upload.filename, renditions=made)


_decode_limiters: dict[int, anyio.CapacityLimiter] = {}


def decode_limiter(settings: Settings) -> anyio.CapacityLimiter:
    """At most DECODE_CONCURRENCY decodes/encodes at a time in this process; the rest wait in the event
    loop (holding no thread), so a burst of uploads cannot take all the memory or all the threads."""
    limiter = _decode_limiters.get(settings.decode_concurrency)
    if limiter is None:
        limiter = _decode_limiters[settings.decode_concurrency] = anyio.CapacityLimiter(
            settings.decode_concurrency
        )
    return limiter


def _decode_and_render(data: bytes, settings: Settings) -> tuple[DecodedImage, Renditions]:
    decoded = decode(
        data,
        max_pixels=settings.max_pixels,
        max_pixels_per_byte=settings.max_pixels_per_byte,
        max_jpeg_scans=settings.max_jpeg_scans,
    )
    return decoded, renditions(decoded)


async def decode_upload(data: bytes, settings: Settings) -> tuple[DecodedImage, Renditions]:
    """Decode an upload under the limits and make its served renditions, once, in the decode pool."""
    limiter = decode_limiter(settings)
    return await anyio.to_thread.run_sync(_decode_and_render, data, settings, limiter=limiter)


OPTIONS_MAX_CHARS = 10_000
OPTIONS_MAX_DEPTH = 8
OPTIONS_MAX_DIGITS = 30
_JSON_STRUCTURE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def parse_options_json(text: str) -> dict[str, Any]:
    """``options`` as a JSON object, refusing what would be costly or crash the parser: too long, nested
    too deep (Python's parser recurses) or numbers with too many digits (int() refuses 4,300+)."""
    if len(text) > OPTIONS_MAX_CHARS:
        raise HTTPException(422, f"options is longer than {OPTIONS_MAX_CHARS:,} characters")
    depth = deepest = 0
    for token in _JSON_STRUCTURE.findall(text):
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > OPTIONS_MAX_DEPTH:
                raise HTTPException(422, f"options is nested more than {OPTIONS_MAX_DEPTH} levels deep")
        elif token in "]}":
            depth -= 1

    def number(kind: type) -> Any:
        def parse(literal: str) -> Any:
            if len(literal) > OPTIONS_MAX_DIGITS:
                raise HTTPException(422, f"options holds a number longer than {OPTIONS_MAX_DIGITS} digits")
            return kind(literal)

        return parse

    try:
        parsed = json.loads(text, parse_int=number(int), parse_float=number(float))
    except json.JSONDecodeError as exc:
        raise HTTPException(422, f"options must be a JSON object: {exc.msg}") from None
    except (RecursionError, ValueError):
        raise HTTPException(422, "options must be a JSON object of plain values") from None
    if not isinstance(parsed, dict):
        raise HTTPException(422, 'options must be a JSON object, e.g. {"iterations": 200}')
    return parsed


def _options(form: Any, options_json: str | None) -> dict[str, Any]:
    raw: dict[str, Any] = {}
    if options_json:
        parsed = parse_options_json(options_json)
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


def known_method(method: str | None) -> MethodInfo:
    """The named method (default: the catalogue's default), or 422 naming the known ones."""
    method = method or method_views.default_method()
    info = method_views.get_method(method)
    if info is None:
        known = ", ".join(m.name for m in method_views.public_methods())
        raise HTTPException(422, f"unknown method {method!r}; choose one of: {known}")
    return info


def resolve_method(
    method: str | None,
    form: Any,
    options: str | None,
    settings: Settings,
    inherited: Mapping[str, Any] | None = None,
) -> tuple[MethodInfo, dict[str, Any]]:
    """The method (default: the catalogue's default) and its checked options from an upload form, over
    ``inherited`` values (a re-run keeps its job's options); 422 unknown/invalid, 409 unavailable."""
    info = known_method(method)
    method = info.name
    try:
        params = method_views.validate(info, {**(inherited or {}), **_options(form, options)})
    except ParamError as exc:
        raise HTTPException(422, str(exc)) from None
    try:
        info.require_available(settings.weights_dir)
    except Unavailable as exc:
        raise HTTPException(409, str(exc)) from None
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
        "choose a method from `GET /methods` (without `method`, the default one: `unet-bins`). Method "
        "options go either as a JSON object in `options` or as extra form fields named after the option, "
        'e.g. `vividness=0.7` or `hints=[{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}]` (colour hints: x, y '
        "relative to the photo). The `exemplar` method needs a colour `reference` image (or `reference_id` "
        "from `GET /references`). Answers 202 at once; follow `status_url`."
    ),
)
async def colorize(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The photo to colorize.")],
    method: Annotated[
        str | None,
        Form(
            description="Method name from GET /methods; default: the one marked `default`.",
            examples=["unet-bins"],
        ),
    ] = None,
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
    job_id = await run_in_threadpool(_create_and_enqueue, session, info.name, params, upload, ref, client)
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
    return JobOut.model_validate(method_views.job_dict(job, queue))


def _read_job(job_id: str) -> JobOut:
    with session_scope() as session:
        return job_out(_get_job(session, job_id), session, get_settings())


# Polled by every open job page: async, with its database work in one thread call and its own short
# session, so a connection is held only while a thread works (see db.get_session on why).
@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=ERRORS,
    summary="Job status and progress",
    description="While the job waits or runs, `queue` says how many jobs are ahead of it in its lane and "
    "when it should start and finish (from the recent durations of its method on this server).",
)
async def get_job(job_id: str) -> JobOut:
    return await run_in_threadpool(_read_job, job_id)


@router.delete(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses={204: {"description": "The finished job and its images were deleted."}, **ERRORS},
    summary="Cancel a queued or running job; delete a finished one",
    description=(
        "A queued or running job is cancelled (200, the job). A finished job (done, failed, cancelled) is "
        "deleted with its uploaded and result images (204); afterwards its id answers 404. A job that is a "
        "stimulus of a user study is kept while the study exists (409)."
    ),
)
async def cancel_or_delete_job(job_id: str) -> Any:
    return await run_in_threadpool(_cancel_or_delete, job_id)


def _cancel_or_delete(job_id: str) -> JobOut | Response:
    with session_scope() as session:
        job = _get_job(session, job_id)
        if jobs.cancel(session, job_id):
            session.refresh(job)
            return job_out(job, session, get_settings())
        if jobs.delete_finished(session, job_id) is None:
            raise HTTPException(409, "this job is part of a user study and is kept while the study exists")
        return Response(status_code=204)


IMMUTABLE = "private, max-age=31536000, immutable"


@router.post(
    "/jobs/{job_id}/rerun",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses=ERRORS,
    dependencies=[Depends(upload_rate_limit)],
    summary="Colorize the same photo again with other options (e.g. vividness, hints)",
    description=(
        "A new job on this job's photo (and reference), with the same method unless `method` is given. "
        "Options: a JSON object in `options` or form fields named after them, as for POST /colorize; the "
        "options not given keep this job's values."
    ),
)
async def rerun_job(
    job_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    method: Annotated[str | None, Form(description="Another method (default: this job's).")] = None,
    options: Annotated[str | None, Form(description='Options as JSON, e.g. {"vividness": 0.8}.')] = None,
) -> JobCreated:
    job = await run_in_threadpool(_get_job, session, job_id)
    info = known_method(method or job.method)
    if info.needs_reference != (job.reference_image_id is not None):
        raise HTTPException(422, f"method {info.name!r} cannot re-run job {job_id}: the reference differs")
    inherited = (
        {k: v for k, v in (job.params or {}).items() if info.param(k)} if info.name == job.method else {}
    )
    info, params = resolve_method(info.name, await request.form(), options, settings, inherited)
    new_id = await run_in_threadpool(_rerun_and_enqueue, session, job, info.name, params, client_of(request))
    response.headers["Location"] = f"/jobs/{new_id}"
    return JobCreated(
        id=new_id,
        status="queued",
        status_url=f"/jobs/{new_id}",
        result_url=f"/jobs/{new_id}/result.png",
        page_url=f"/jobs/{new_id}/view",
    )


def _rerun_and_enqueue(session: Session, job: Job, method: str, params: dict[str, Any], client: str) -> str:
    new = jobs.rerun_job(session, job, method=method, params=params, client=client)
    session.commit()
    jobs.enqueue(session, [new.id])
    return new.id


def _png(data: bytes, *, immutable: bool = True) -> Response:
    cache = IMMUTABLE if immutable else "no-store"
    return Response(data, media_type="image/png", headers={"Cache-Control": cache})


def _cached(request: Request, data: bytes | None, etag: str, media_type: str) -> Response:
    """An immutable stored image, with an ETag (a revalidation costs no image bytes)."""
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return Response(data, media_type=media_type, headers=headers)


def _image_bytes(session: Session, image_id: str) -> Image:
    image = session.scalars(select(Image).where(Image.id == image_id).options(undefer(Image.data))).one()
    return image


# Which stored rendition each URL serves: input.png the lightness, original/reference the colour image.
_RENDITION_COLUMNS = {"gray": Image.gray_png, "color": Image.color_png, "thumb": Image.thumb_jpeg}


def _load_rendition(
    job_id: str, role: str, kind: str, backfill: bool
) -> tuple[str, bytes | None, bytes | None] | None:
    """(sha256, wanted rendition, gray rendition) of a job's image, None when the job has no such image,
    or (sha256, None, None) when it was stored without renditions and ``backfill`` is False. A short
    session of its own: no connection is held while the bytes are sent."""
    with session_scope() as session:
        job = session.get(Job, job_id) if is_valid_id(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job")
        image_id = {
            "input": job.input_image_id,
            "reference": job.reference_image_id,
            "result": job.result_image_id,
        }[role]
        if image_id is None:
            return None
        row = session.execute(
            select(Image.sha256, _RENDITION_COLUMNS[kind], Image.gray_png).where(Image.id == image_id)
        ).one()
        if row[1] is None and (row[2] is None or kind == "thumb") and backfill:
            return _backfill(session, image_id, kind)
        return row[0], row[1], row[2]


def _backfill(session: Session, image_id: str, kind: str) -> tuple[str, bytes | None, bytes | None]:
    """Make the missing renditions of an image stored without them (a result's thumbnail, rows from
    before 0005), once; they are kept. Called in the decode pool."""
    image = _image_bytes(session, image_id)
    settings = get_settings()
    decoded = decode(image.data, max_pixels=max(settings.max_pixels, image.width * image.height))
    if kind == "thumb":
        image.thumb_jpeg = thumbnail_jpeg(decoded.rgb)
        return image.sha256, image.thumb_jpeg, image.gray_png
    made = renditions(decoded)
    image.gray_png, image.color_png, image.thumb_jpeg = made.gray_png, made.color_png, made.thumb_jpeg
    return image.sha256, made.color_png if kind == "color" else made.gray_png, made.gray_png


async def _serve(request: Request, job_id: str, role: str, kind: str) -> Response:
    found = await run_in_threadpool(_load_rendition, job_id, role, kind, False)
    if found is not None and found[1] is None and (found[2] is None or kind == "thumb"):
        limiter = decode_limiter(get_settings())
        found = await anyio.to_thread.run_sync(_load_rendition, job_id, role, kind, True, limiter=limiter)
    if found is None:
        raise HTTPException(404, f"this job has no {role} image" + (" yet" if role == "result" else ""))
    sha, data, gray = found
    if kind == "thumb":
        return _cached(request, data, f'"{sha[:32]}-thumb"', "image/jpeg")
    # A gray upload has one rendition: its original is its lightness image.
    return _cached(request, data if data is not None else gray, f'"{sha[:32]}-{kind}"', "image/png")


@router.get(
    "/jobs/{job_id}/result.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The colorized photo (full input resolution)",
)
def job_result(
    job_id: str,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    format: Annotated[Literal["png", "jpg"], Query(description="png (lossless) or jpg.")] = "png",
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality (format=jpg).")] = 90,
    download: Annotated[bool, Query(description="Ask the browser to save the file.")] = False,
) -> Response:
    job = _get_job(session, job_id)
    if job.result_image_id is None:
        raise HTTPException(404, f"no result yet: the job is {job.status}")
    image = _image_bytes(session, job.result_image_id)
    etag = f'"{image.sha256[:32]}-{format}{quality if format == "jpg" else ""}"'
    data = None if etag in request.headers.get("if-none-match", "") else image.data
    if data is not None and format == "jpg":
        data = to_jpeg(data, quality, settings.max_pixels)
    response = _cached(request, data, etag, "image/jpeg" if format == "jpg" else "image/png")
    response.headers["Content-Disposition"] = content_disposition(
        method_views.download_name(job, format), attachment=download
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
async def job_input(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "input", "gray")


@router.get(
    "/jobs/{job_id}/original.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The upload as stored (the ground truth when it is a colour photo)",
)
async def job_original(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "input", "color")


@router.get(
    "/jobs/{job_id}/reference.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="The reference image of an exemplar job",
)
async def job_reference(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "reference", "color")


@router.get(
    "/jobs/{job_id}/thumb.jpg",
    responses={200: {"content": {"image/jpeg": {}}}, **ERRORS},
    summary="A small JPEG preview (longest side 320 px) of the input or of the result",
)
async def job_thumbnail(
    job_id: str, request: Request, of: Annotated[Literal["input", "result"], Query()] = "result"
) -> Response:
    # Each variant has its own URL, so both can be cached as immutable (`urls.thumb` names the right one).
    return await _serve(request, job_id, of, "thumb")


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
    return [MethodOut.model_validate(m) for m in method_views.methods_out(settings, session)]


@router.get("/references", response_model=list[ReferenceOut], summary="Reference images you can reuse")
async def list_references(request: Request, settings: SettingsDep) -> list[ReferenceOut]:
    return await run_in_threadpool(_references, settings, client_of(request))


def _references(settings: Settings, client: str | None) -> list[ReferenceOut]:
    with session_scope() as session:
        return [ReferenceOut.model_validate(r) for r in examples.list_references(session, settings, client)]


@router.get(
    "/references/{ref_id}.png",
    responses={200: {"content": {"image/png": {}}}, **ERRORS},
    summary="A reference image (your earlier upload or a bundled example)",
)
def reference_image(ref_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    ref = examples.resolve_reference(session, settings, ref_id, client_of(request))
    if ref is None:
        raise HTTPException(404, "no such reference image")
    session.commit()  # an example is stored (with its renditions) on first use
    sha, data, gray = session.execute(
        select(Image.sha256, Image.color_png, Image.gray_png).where(Image.id == ref.id)
    ).one()
    if data is None and gray is None:
        _sha, data, gray = _backfill(session, ref.id, "color")
        session.commit()
    return _cached(request, data if data is not None else gray, f'"{sha[:32]}-color"', "image/png")
