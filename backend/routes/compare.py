"""Compare view API: one photo through every available method (each a normal job), side by side."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Header, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool

from backend import idempotency, method_choice
from backend import job_lifecycle as lifecycle
from backend.db import session_scope
from backend.deps import ComparisonDep, SessionDep, SettingsDep, comparison_or_404
from backend.models import new_id
from backend.ratelimit import photo_budget
from backend.schemas import (
    UPLOAD_ERRORS,
    ComparisonCreated,
    ComparisonOut,
    comparison_out,
    errors,
    queued,
)
from backend.uploads import has_file, read_reference, read_upload
from backend.web import client_of

router = APIRouter(tags=["compare"])


@router.post(
    "/compare",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ComparisonCreated,
    responses={**queued("Queued: follow `status_url` (also in `Location`)."), **UPLOAD_ERRORS},
    summary="Colorize one photo with every available method",
    description=(
        "Queues one job per method (default: every available method that needs no reference; with a "
        "`reference` or a `reference_id` from GET /references, the reference methods too). When the photo "
        "is a colour photo, each finished job carries its metrics against it. Follow `status_url`."
    ),
)
@idempotency.replayable
async def create_comparison(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The photo to colorize.")],
    reference: Annotated[
        UploadFile | None, File(description="Colour reference for the reference methods.")
    ] = None,
    reference_id: Annotated[str | None, Form(description="An earlier image id from GET /references.")] = None,
    methods: Annotated[str | None, Form(description="Comma-separated method names (default: all).")] = None,
    idempotency_key: Annotated[
        str | None, Header(alias=idempotency.HEADER, description=idempotency.HEADER_DOC)
    ] = None,
) -> ComparisonCreated:
    with_reference = has_file(reference) or bool(reference_id)
    chosen = method_choice.choose_for_comparison(await request.form(), methods, settings, with_reference)
    upload = await read_upload(image, settings, "photo", "image")
    with photo_budget(request, settings, 1):  # given back if the request is refused below
        client = client_of(request)
        ref = None
        if with_reference:  # checked as for the reference-guided default: a colour image
            ref = await read_reference(
                method_choice.known_method(None, with_reference=True),
                reference,
                reference_id,
                session,
                settings,
                client,
            )
        group = new_id()
        new_jobs = [
            lifecycle.NewJob(m.name, m.defaults(), image=upload, reference=ref if m.needs_reference else None)
            for m in chosen
        ]
        ids = await run_in_threadpool(
            lifecycle.create_and_enqueue, session, new_jobs, client=client, group_id=group
        )
    response.headers["Location"] = f"/compare/{group}"
    return ComparisonCreated(
        id=group,
        status_url=f"/compare/{group}",
        page_url=f"/compare/{group}/view",
        results_url=f"/results.zip?comparison={group}",
        jobs=ids,
    )


@router.get(
    "/compare/{group_id}",
    response_model=ComparisonOut,
    responses=errors(404),
    summary="A comparison: every method's job, with metrics when there is a ground truth",
)
async def get_comparison(group_id: str, request: Request) -> ComparisonOut:
    # Polled by the compare page: one thread call with its own short session (see db.get_session).
    return await run_in_threadpool(_read_comparison, group_id, client_of(request))


def _read_comparison(group_id: str, client: str | None) -> ComparisonOut:
    with session_scope() as session:
        rows = comparison_or_404(session, group_id)
        return comparison_out(group_id, rows, owned=lifecycle.is_maker(rows[0].client, client))


@router.post(
    "/compare/{group_id}/cancel",
    response_model=ComparisonOut,
    responses=errors(403, 404, 409),
    summary="Stop a comparison: cancel its jobs still to do, keep the finished ones",
    description="The methods' jobs still queued or running are cancelled; the finished ones stay. The answer "
    "is the comparison; a request sent again does no more than the first. Only its maker may (403).",
)
def cancel_comparison(
    group_id: str, rows: ComparisonDep, request: Request, session: SessionDep
) -> ComparisonOut:
    lifecycle.require_maker(rows[0].client, client_of(request), "comparison")
    lifecycle.cancel_together(session, rows)
    session.expire_all()
    return comparison_out(group_id, comparison_or_404(session, group_id), owned=True)


@router.delete(
    "/compare/{group_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=errors(403, 404, 409),
    summary="Delete a comparison: cancel its unfinished jobs, delete them all with their images",
    description="Afterwards the comparison and its jobs answer 404. Only its maker may (see DELETE "
    "/jobs/{id}).",
)
def delete_comparison(rows: ComparisonDep, request: Request, session: SessionDep) -> Response:
    lifecycle.require_maker(rows[0].client, client_of(request), "comparison")
    lifecycle.delete_together(session, rows)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
