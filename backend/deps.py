"""FastAPI dependencies shared by the routes: the request's database session, the settings, the researcher,
and the job, batch or comparison a path names (or 404).

Each ``*_or_404`` function is also called directly by the routes that open their own short session in a
thread (``session_scope`` in ``run_in_threadpool``, see backend.db.get_session), and by those with query or
form fields: a dependency raises its 404 before FastAPI validates the other fields, which would change
which error such a request gets."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend import job_lifecycle as lifecycle
from backend.auth import AdminSession, read_session
from backend.config import Settings, get_settings
from backend.db import get_session
from backend.errors import UserError
from backend.models import Batch, Job, is_valid_id
from backend.templates import same_site_referer, wants_html

# One session per request (see backend.db.get_session for when a route should open its own instead).
SessionDep = Annotated[Session, Depends(get_session)]


async def _settings() -> Settings:
    # async: FastAPI runs a plain-function dependency in a worker thread, a hand-off on every request
    return get_settings()


SettingsDep = Annotated[Settings, Depends(_settings)]


def current_admin(request: Request, settings: SettingsDep) -> AdminSession:
    """The logged-in researcher (/admin), or 401 (JSON) / a redirect to the login page (browsers, GET)."""
    session = read_session(request, settings)
    if session is not None:
        return session
    if wants_html(request):
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            where = f"next={quote(target, safe='')}"
        else:  # a form posted after the session ended: log in, then back to the form's page
            where = f"next={quote(same_site_referer(request) or '/admin', safe='')}&expired=1"
        raise UserError(303, "log in first", headers={"Location": f"/admin/login?{where}"})
    raise UserError(401, "log in at /admin/login first")


AdminDep = Annotated[AdminSession, Depends(current_admin)]


def job_or_404(session: Session, job_id: str) -> Job:
    """The job, or 404 (an id that cannot be one is not looked up)."""
    job = session.get(Job, job_id) if is_valid_id(job_id) else None
    if job is None:
        raise UserError(404, "no such job")
    return job


def batch_or_404(session: Session, batch_id: str) -> Batch:
    """The batch, or 404 (an id that cannot be one is not looked up)."""
    batch = session.get(Batch, batch_id) if is_valid_id(batch_id) else None
    if batch is None:
        raise UserError(404, "no such batch")
    return batch


def comparison_or_404(session: Session, group_id: str) -> list[Job]:
    """The jobs of a comparison, or 404."""
    rows = lifecycle.group_jobs(session, group_id)
    if not rows:
        raise UserError(404, "no such comparison")
    return rows


# Plain functions: FastAPI runs them in a worker thread, as the database reads need.
def _path_job(job_id: str, session: SessionDep) -> Job:
    return job_or_404(session, job_id)


def _path_batch(batch_id: str, session: SessionDep) -> Batch:
    return batch_or_404(session, batch_id)


def _path_comparison(group_id: str, session: SessionDep) -> list[Job]:
    return comparison_or_404(session, group_id)


# The row named by the path's ``{job_id}`` / ``{batch_id}`` / ``{group_id}``, read in the request's session.
JobDep = Annotated[Job, Depends(_path_job)]
BatchDep = Annotated[Batch, Depends(_path_batch)]
ComparisonDep = Annotated[list[Job], Depends(_path_comparison)]
