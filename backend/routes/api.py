"""REST API: submit colorization jobs, follow them, fetch their images, list the methods."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import anyio
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from backend import estimates, examples, idempotency, method_choice, method_views, webhooks
from backend import job_lifecycle as lifecycle
from backend.config import Settings, get_settings
from backend.db import session_scope
from backend.deps import JobDep, SessionDep, SettingsDep, job_or_404
from backend.errors import UserError
from backend.images import decode, png_to_jpeg, renditions, thumbnail_jpeg
from backend.models import Image, Job, JobStatus
from backend.ratelimit import photo_budget
from backend.schemas import (
    UPLOAD_ERRORS,
    WEBHOOK_FIELD,
    JobCreated,
    JobOut,
    MethodOut,
    ReferenceOut,
    download_name,
    errors,
    file_responses,
    job_created,
    job_out,
    queued,
)
from backend.uploads import decode_limiter, has_file, read_reference, read_upload
from backend.web import client_of, content_disposition, head_only

router = APIRouter(tags=["colorize"])


@router.post(
    "/colorize",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={**queued("Queued: follow `status_url` (also in `Location`)."), **UPLOAD_ERRORS},
    summary="Queue a colorization job",
    description=(
        "Upload a photo (any common raster format; colour photos are grayed and kept as ground truth) and "
        "choose a method from `GET /methods` (without `method`, the default one: `unet-bins`, or "
        "`unet-bins-reference` when a `reference` comes with the photo). Method "
        "options go either as a JSON object in `options` or as extra form fields named after the option, "
        'e.g. `vividness=0.7` or `hints=[{"x": 0.5, "y": 0.2, "color": "#3a7bd5"}]` (colour hints: x, y '
        "relative to the photo). The reference methods (`unet-bins-reference`, `exemplar`) need a colour "
        "`reference` image (or `reference_id` from `GET /references`). Answers 202 at once; follow "
        "`status_url`, or give a `webhook` URL to be called when the job has finished."
    ),
)
@idempotency.replayable
async def colorize(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The photo to colorize.")],
    method: Annotated[
        str | None,
        Form(
            description="Method name from GET /methods; default: the one marked `default`, or "
            "`unet-bins-reference` when a `reference` comes with the photo.",
            examples=["unet-bins"],
        ),
    ] = None,
    reference: Annotated[
        UploadFile | None, File(description="Colour reference (unet-bins-reference, exemplar).")
    ] = None,
    reference_id: Annotated[str | None, Form(description="An earlier image id from GET /references.")] = None,
    options: Annotated[
        str | None, Form(description='Method options as JSON, e.g. {"iterations": 200}.')
    ] = None,
    webhook: Annotated[str | None, Form(description=WEBHOOK_FIELD)] = None,
    idempotency_key: Annotated[
        str | None, Header(alias=idempotency.HEADER, description=idempotency.HEADER_DOC)
    ] = None,
) -> JobCreated:
    info, params = method_choice.choose_with_reference(
        method, await request.form(), options, settings, has_file(reference), reference_id
    )
    webhook_url = webhooks.check_url(webhook, settings) if webhook is not None else None
    upload = await read_upload(image, settings, "photo", "image")
    client = client_of(request)
    with photo_budget(request, settings, 1):  # given back if the request is refused below
        ref = await read_reference(info, reference, reference_id, session, settings, client)
        new = lifecycle.NewJob(info.name, params, image=upload, reference=ref, webhook_url=webhook_url)
        [job_id] = await run_in_threadpool(lifecycle.create_and_enqueue, session, [new], client=client)
    response.headers["Location"] = f"/jobs/{job_id}"
    return job_created(job_id)


def _job_with_queue(session: Session, job: Job, client: str | None) -> JobOut:
    """The JSON form of a job as ``client`` may see it; an unfinished one also gets its place in its lane."""
    owned = lifecycle.is_maker(job.client, client)
    return job_out(job, estimates.queue_info(session, get_settings(), job), owned=owned)


def _read_job(job_id: str, client: str | None) -> JobOut:
    with session_scope() as session:
        return _job_with_queue(session, job_or_404(session, job_id), client)


# Polled by every open job page: async, with its database work in one thread call and its own short
# session, so a connection is held only while a thread works (see db.get_session on why).
@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    responses=errors(404),
    summary="Job status and progress",
    description="While the job waits or runs, `queue` says how many jobs are ahead of it in its lane and "
    "when it should start and finish (from the recent durations of its method on this server).",
)
async def get_job(job_id: str, request: Request) -> JobOut:
    return await run_in_threadpool(_read_job, job_id, client_of(request))


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobOut,
    responses=errors(403, 404, 409),
    summary="Cancel a queued or running job (sent again: the same)",
    description=(
        "A queued or running job is cancelled and kept, with its photo, as `cancelled`; a finished one "
        "(done, failed, cancelled) is left as it is. Either way the answer is the job, so a request sent "
        "again (after a lost answer) does no more than the first. A job that is a stimulus of a user study "
        "is not cancelled (409). Only the job's maker may (the `colorlab_client` cookie it was made with: "
        "curl `-c jar -b jar`); anyone else gets 403."
    ),
)
async def cancel_job(job_id: str, request: Request) -> JobOut:
    return await run_in_threadpool(_cancel, job_id, client_of(request))


def _cancel(job_id: str, client: str | None) -> JobOut:
    with session_scope() as session:
        lifecycle.require_maker(job_or_404(session, job_id).client, client, "job")
        lifecycle.cancel_one(session, job_id)
        job = session.get(Job, job_id, populate_existing=True)
        if job is None:  # deleted meanwhile (a page's DELETE)
            raise UserError(404, "no such job (it was deleted)")
        return _job_with_queue(session, job, client)


@router.delete(
    "/jobs/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={204: {"description": "The job and its images were deleted."}, **errors(403, 404, 409)},
    summary="Delete a job with its images (cancelled first if it has not finished)",
    description=(
        "The job is deleted with its uploaded and result images; a queued or running one is cancelled "
        "first (its worker stops). Afterwards its id answers 404, so a request sent again gets 404, never "
        "another job's deletion. To stop a job and keep it, POST /jobs/{id}/cancel. A job that is a "
        "stimulus of a user study is kept while the study exists (409). Only the job's maker may (403)."
    ),
)
async def delete_job(job_id: str, request: Request) -> Response:
    return await run_in_threadpool(_delete, job_id, client_of(request))


def _delete(job_id: str, client: str | None) -> Response:
    with session_scope() as session:
        lifecycle.require_maker(job_or_404(session, job_id).client, client, "job")
        lifecycle.delete_one(session, job_id)
        return Response(status_code=status.HTTP_204_NO_CONTENT)


IMMUTABLE = "private, max-age=31536000, immutable"


@router.post(
    "/jobs/{job_id}/rerun",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobCreated,
    responses={**queued("Queued: the new job's `status_url` (also in `Location`)."), **UPLOAD_ERRORS},
    summary="Colorize the same photo again with other options (e.g. vividness, hints) or another reference",
    description=(
        "A new job on this job's photo (and reference), with the same method unless `method` is given. "
        "Options: a JSON object in `options` or form fields named after them, as for POST /colorize; the "
        "options not given keep this job's values. Another colour `reference` (or `reference_id` from GET "
        "/references) replaces the job's own; a job made without one is then coloured by the reference "
        "method (as POST /colorize does), unless `method` says otherwise."
    ),
)
@idempotency.replayable
async def rerun_job(
    job_id: str,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    method: Annotated[str | None, Form(description="Another method (default: this job's).")] = None,
    options: Annotated[str | None, Form(description='Options as JSON, e.g. {"vividness": 0.8}.')] = None,
    reference: Annotated[
        UploadFile | None, File(description="Another colour reference (default: this job's).")
    ] = None,
    reference_id: Annotated[str | None, Form(description="Another reference, from GET /references.")] = None,
    fix_preview: Annotated[
        bool,
        Form(
            description='A "Fix colours" preview: left out of the history until POST /jobs/{id}/keep, '
            "deleted after PREVIEW_RETAIN_HOURS if never kept."
        ),
    ] = False,
    webhook: Annotated[str | None, Form(description=WEBHOOK_FIELD)] = None,
    idempotency_key: Annotated[
        str | None, Header(alias=idempotency.HEADER, description=idempotency.HEADER_DOC)
    ] = None,
) -> JobCreated:
    # Not JobDep: its 404 would come before the check of the form's fields.
    job = await run_in_threadpool(job_or_404, session, job_id)
    form = await request.form()
    _refuse_what_a_rerun_would_ignore(request, form)
    webhook_url = webhooks.check_url(webhook, settings) if webhook is not None else None
    new_reference = has_file(reference) or bool(reference_id)
    info, params = method_choice.choose_for_rerun(job, method, form, options, settings, new_reference)
    client = client_of(request)
    ref = await read_reference(info, reference, reference_id, session, settings, client)
    # in a thread: it loads the reference row
    again = await run_in_threadpool(lifecycle.rerun, job, info.name, params, ref, fix_preview, webhook_url)
    [new_id] = await run_in_threadpool(lifecycle.create_and_enqueue, session, [again], client=client)
    response.headers["Location"] = f"/jobs/{new_id}"
    return job_created(new_id)


@router.post(
    "/jobs/{job_id}/keep",
    response_model=JobOut,
    responses=errors(403, 404),
    summary='Keep a "Fix colours" preview: it becomes a job like any other',
    description="The preview (POST /jobs/{id}/rerun with `fix_preview=true`) joins the history and is kept "
    "as long as any job. A job that is not a preview is returned unchanged. Only its maker may keep it.",
)
def keep_job(job: JobDep, request: Request, session: SessionDep) -> JobOut:
    lifecycle.require_maker(job.client, client_of(request), "job")
    return job_out(lifecycle.keep(session, job))


def _refuse_what_a_rerun_would_ignore(request: Request, form: Any) -> None:
    """Every field of a re-run is optional, so a JSON body (read as an empty form) or a new photo would be
    dropped without a word and the job re-run unchanged: refuse them instead."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("", "multipart/form-data", "application/x-www-form-urlencoded"):
        raise UserError(415, f"send the fields as multipart/form-data (as for POST /colorize), not {media}")
    if form.getlist("image"):
        raise UserError(
            422, "a re-run colours this job's own photo: colorize a new photo with POST /colorize"
        )


def _png(data: bytes, *, immutable: bool = True) -> Response:
    cache = IMMUTABLE if immutable else "no-store"
    return Response(data, media_type="image/png", headers={"Cache-Control": cache})


def _not_modified(request: Request, etag: str) -> bool:
    """Whether If-None-Match names this ETag, or is ``*`` (any current representation, RFC 9110 §13.1.2)."""
    given = request.headers.get("if-none-match", "")
    return given.strip() == "*" or etag in given


def _cached(request: Request, data: bytes | None, etag: str, media_type: str) -> Response:
    """An immutable stored image, with an ETag (a revalidation costs no image bytes)."""
    headers = {"Cache-Control": IMMUTABLE, "ETag": etag}
    if _not_modified(request, etag):
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
        job = job_or_404(session, job_id)
        image_id = {
            "input": job.input_image_id,
            "reference": job.reference_image_id,
            "result": job.result_image_id,
        }[role]
        if image_id is None and role == "result":
            raise no_result(job)
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
        raise UserError(404, f"this job has no {role} image")
    sha, data, gray = found
    if kind == "thumb":
        return _cached(request, data, f'"{sha[:32]}-thumb"', "image/jpeg")
    # A gray upload has one rendition: its original is its lightness image.
    return _cached(request, data if data is not None else gray, f'"{sha[:32]}-{kind}"', "image/png")


@router.get(
    "/jobs/{job_id}/result.png",
    response_class=Response,
    responses={
        **file_responses(
            "The result: PNG, or JPEG with `format=jpg`.", "image/png", "image/jpeg", disposition=True
        ),
        **errors(404, 409, 422),
    },
    summary="The colorized photo (full input resolution)",
    description="404: no such job; 409: the job has no result, with `Retry-After` while it is queued or "
    "running (ask again then), without once it failed or was cancelled.",
)
async def job_result(
    job_id: str,
    request: Request,
    settings: SettingsDep,
    format: Annotated[Literal["png", "jpg"], Query(description="png (lossless) or jpg.")] = "png",
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality (format=jpg).")] = 90,
    download: Annotated[bool, Query(description="Ask the browser to save the file.")] = False,
) -> Response:
    """sRGB; the photo's resolution (dpi), EXIF and XMP records are kept, its orientation applied."""
    sha, png, name = await run_in_threadpool(_read_result, job_id, format)
    etag = f'"{sha[:32]}-{format}{quality if format == "jpg" else ""}"'
    data = None if _not_modified(request, etag) else png
    if data is not None and format == "jpg" and head_only(request):  # its length is known only once made
        disposition = content_disposition(name, attachment=download)  # as the GET's
        headers = {"Cache-Control": IMMUTABLE, "ETag": etag, "Content-Disposition": disposition}
        return StreamingResponse(iter(()), media_type="image/jpeg", headers=headers)
    if data is not None and format == "jpg":  # in the decode pool: a 40 MP re-encoding holds ~1 GB
        limiter = decode_limiter(settings)
        data = await anyio.to_thread.run_sync(
            png_to_jpeg, data, quality, settings.max_pixels, limiter=limiter
        )
    response = _cached(request, data, etag, "image/jpeg" if format == "jpg" else "image/png")
    response.headers["Content-Disposition"] = content_disposition(name, attachment=download)
    return response


def no_result(job: Job) -> UserError:
    """409 for a job that is there but has no result (404 is for a job that is not): with Retry-After while
    it is still to finish, without once it failed or was cancelled (it never will have one)."""
    if job.status in (JobStatus.queued, JobStatus.running):
        return UserError(
            409,
            f"no result yet: the job is {job.status}; ask again once it has finished",
            headers={"Retry-After": "5"},
        )
    ended = "failed" if job.status == JobStatus.failed else "was cancelled"
    return UserError(409, f"this job has no result: it {ended}")


def _read_result(job_id: str, format: str) -> tuple[str, bytes, str]:
    """A job's stored result: its sha256, its PNG and its download name."""
    with session_scope() as session:
        job = job_or_404(session, job_id)
        if job.result_image_id is None:
            raise no_result(job)
        image = _image_bytes(session, job.result_image_id)
        return image.sha256, image.data, download_name(job, format)


@router.get(
    "/jobs/{job_id}/input.png",
    response_class=Response,
    responses={**file_responses("The grayscale photo.", "image/png"), **errors(404)},
    summary="The grayscale photo as the colorizer saw it",
)
async def job_input(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "input", "gray")


@router.get(
    "/jobs/{job_id}/original.png",
    response_class=Response,
    responses={**file_responses("The upload, as PNG.", "image/png"), **errors(404)},
    summary="The upload as stored (the ground truth when it is a colour photo)",
)
async def job_original(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "input", "color")


@router.get(
    "/jobs/{job_id}/reference.png",
    response_class=Response,
    responses={**file_responses("The reference, as PNG.", "image/png"), **errors(404)},
    summary="The colour reference a job was given (the reference methods)",
)
async def job_reference(job_id: str, request: Request) -> Response:
    return await _serve(request, job_id, "reference", "color")


@router.get(
    "/jobs/{job_id}/thumb.jpg",
    response_class=Response,
    responses={**file_responses("The preview.", "image/jpeg"), **errors(404, 409, 422)},
    summary="A small JPEG preview (longest side 320 px) of the input or of the result",
    description="404: no such job; 409: the job has no result (yet: with `Retry-After` while it is queued "
    "or running).",
)
async def job_thumbnail(
    job_id: str, request: Request, of: Annotated[Literal["input", "result"], Query()] = "result"
) -> Response:
    # Each variant has its own URL, so both can be cached as immutable (`urls.thumb` names the right one).
    return await _serve(request, job_id, of, "thumb")


@router.get(
    "/jobs/{job_id}/preview.png",
    response_class=Response,
    responses={**file_responses("The latest preview.", "image/png", etag=False), **errors(404)},
    summary="Live preview of a running iterative job",
)
def job_preview(job: JobDep, session: SessionDep) -> Response:
    preview = session.scalar(select(Job.preview_png).where(Job.id == job.id))
    if not preview:
        raise UserError(404, "no preview: the job is not running an iterative method right now")
    return _png(preview, immutable=False)


@router.get(
    "/methods",
    response_model=list[MethodOut],
    responses=errors(),
    summary="The colorization methods and their options",
)
def list_methods(settings: SettingsDep, session: SessionDep) -> list[MethodOut]:
    return [MethodOut.model_validate(m) for m in method_views.methods_out(settings, session)]


@router.get(
    "/references",
    response_model=list[ReferenceOut],
    responses=errors(),
    summary="Reference images you can reuse",
)
async def list_references(request: Request, settings: SettingsDep) -> list[ReferenceOut]:
    return await run_in_threadpool(_references, settings, client_of(request))


def _references(settings: Settings, client: str | None) -> list[ReferenceOut]:
    with session_scope() as session:
        return [ReferenceOut.model_validate(r) for r in examples.list_references(session, settings, client)]


@router.get(
    "/references/{ref_id}.png",
    response_class=Response,
    responses={**file_responses("The reference, as PNG.", "image/png"), **errors(404)},
    summary="A reference image (your earlier upload or a bundled example)",
)
def reference_image(ref_id: str, request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    ref = examples.resolve_reference(session, settings, ref_id, client_of(request))
    if ref is None:
        raise UserError(404, "no such reference image")
    session.commit()  # an example is stored (with its renditions) on first use
    sha, data, gray = session.execute(
        select(Image.sha256, Image.color_png, Image.gray_png).where(Image.id == ref.id)
    ).one()
    if data is None and gray is None:
        _sha, data, gray = _backfill(session, ref.id, "color")
        session.commit()
    return _cached(request, data if data is not None else gray, f'"{sha[:32]}-color"', "image/png")
