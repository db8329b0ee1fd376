"""Compare view API: one photo through every available method (each a normal job), side by side."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, HTTPException, Request, Response, UploadFile, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend import jobs, method_views
from backend.db import session_scope
from backend.models import Job, is_valid_id, new_id
from backend.routes.api import ERRORS, SessionDep, SettingsDep, read_upload, upload_rate_limit
from backend.schemas import JobOut
from backend.web import client_of
from worker.colorizers.methods import available as available_methods

router = APIRouter(tags=["compare"])


class ComparisonCreated(BaseModel):
    id: str
    status_url: str = Field(examples=["/compare/Jx1…"])
    page_url: str
    jobs: list[str]


class ComparisonOut(BaseModel):
    id: str
    width: int
    height: int
    has_ground_truth: bool
    input_url: str
    original_url: str
    finished: bool
    jobs: list[JobOut]


@router.post(
    "/compare",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ComparisonCreated,
    responses=ERRORS,
    dependencies=[Depends(upload_rate_limit)],
    summary="Colorize one photo with every available method",
    description=(
        "Queues one job per method (default: every available method that needs no reference; with a "
        "`reference`, the exemplar method too). When the photo is a colour photo, each finished job carries "
        "its metrics against it. Follow `status_url`."
    ),
)
async def create_comparison(
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    image: Annotated[UploadFile, File(description="The photo to colorize.")],
    reference: Annotated[
        UploadFile | None, File(description="Colour reference for the exemplar method.")
    ] = None,
    methods: Annotated[str | None, Form(description="Comma-separated method names (default: all).")] = None,
) -> ComparisonCreated:
    has_reference = reference is not None and bool(reference.filename or reference.size)
    available = available_methods(settings.weights_dir)
    if methods:
        wanted = [n.strip() for n in methods.split(",") if n.strip()]
        by_name = {m.name: m for m in method_views.public_methods()}
        unknown = [n for n in wanted if n not in by_name]
        if unknown:
            raise HTTPException(422, f"unknown method(s): {', '.join(unknown)}")
        missing = [n for n in wanted if by_name[n] not in available]
        if missing:
            raise HTTPException(409, f"unavailable here: {', '.join(missing)} (see GET /methods)")
        chosen = [by_name[n] for n in dict.fromkeys(wanted)]
    else:
        chosen = [m for m in available if has_reference or not m.needs_reference]
    if any(m.needs_reference for m in chosen) and not has_reference:
        raise HTTPException(422, "the exemplar method needs a colour `reference` image")
    if not chosen:
        raise HTTPException(409, "no colorization method is available on this server (see GET /methods)")
    upload = await read_upload(image, settings, "image")
    ref = await read_upload(reference, settings, "reference") if has_reference else None  # type: ignore[arg-type]
    if ref is not None and not ref.decoded.is_color:
        raise HTTPException(422, "the reference image has no colour: the method copies colours from it")
    group = new_id()
    plans = [(m.name, m.defaults(), ref if m.needs_reference else None) for m in chosen]
    ids = await run_in_threadpool(_create_group, session, group, plans, upload, client_of(request))
    response.headers["Location"] = f"/compare/{group}"
    return ComparisonCreated(
        id=group, status_url=f"/compare/{group}", page_url=f"/compare/{group}/view", jobs=ids
    )


def _create_group(
    session: Session,
    group: str,
    plans: list[tuple[str, dict[str, Any], Any]],
    upload: jobs.Upload,
    client: str | None,
) -> list[str]:
    created = []
    for method, params, ref in plans:
        job = jobs.create_job(
            session, method=method, params=params, image=upload, reference=ref, client=client
        )
        job.group_id = group
        created.append(job.id)
    session.commit()
    jobs.enqueue(session, created)
    return created


def comparison(session: Session, group_id: str) -> dict[str, Any] | None:
    if not is_valid_id(group_id):
        return None
    rows = list(session.scalars(select(Job).where(Job.group_id == group_id)))
    if not rows:
        return None
    order = {m.name: i for i, m in enumerate(method_views.public_methods())}
    rows.sort(key=lambda j: order.get(j.method, len(order)))
    first = rows[0]
    return {
        "id": group_id,
        "width": first.input_image.width,
        "height": first.input_image.height,
        "has_ground_truth": first.input_image.is_color,
        "input_url": f"/jobs/{first.id}/input.png",
        "original_url": f"/jobs/{first.id}/original.png",
        "finished": all(j.state.finished for j in rows),
        "jobs": [method_views.job_dict(j) for j in rows],
    }


@router.get(
    "/compare/{group_id}",
    response_model=ComparisonOut,
    responses=ERRORS,
    summary="A comparison: every method's job, with metrics when there is a ground truth",
)
async def get_comparison(group_id: str) -> ComparisonOut:
    # Polled by the compare page: one thread call with its own short session (see db.get_session).
    return await run_in_threadpool(_read_comparison, group_id)


def _read_comparison(group_id: str) -> ComparisonOut:
    with session_scope() as session:
        found = comparison(session, group_id)
        if found is None:
            raise HTTPException(404, "no such comparison")
        return ComparisonOut.model_validate(found)
