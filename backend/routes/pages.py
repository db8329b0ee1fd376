"""HTML pages (Jinja2). The templates and their JS/CSS live in frontend/.

The pages are thin: the upload page reads ``GET /methods`` and ``GET /references`` from the browser, the
job page polls ``GET /jobs/{id}`` and the compare view polls ``GET /compare/{id}``; only the history is
rendered on the server.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from backend import job_lifecycle as lifecycle
from backend import method_views
from backend.config import get_settings
from backend.deps import SessionDep
from backend.models import Batch, Job, JobStatus, is_valid_id
from backend.schemas import MAX_ZIP_RESULTS, comparison_out, job_out
from backend.templates import TEMPLATES, not_found_page
from backend.web import client_of

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def upload_page(request: Request) -> HTMLResponse:
    settings = get_settings()
    context = {
        "nav": "colorize",
        **_upload_limit(),
        "batch_max_photos": settings.batch_max_photos,
        "batch_max_bytes": settings.batch_max_bytes,
        "batch_max_label": f"{settings.batch_max_bytes / 1e6:g} MB",
    }
    return TEMPLATES.TemplateResponse(request, "upload.html", context)


def _upload_limit() -> dict[str, Any]:
    """What the drop zones of a page check before sending a file (data-max-bytes, data-max-label)."""
    limit = get_settings().max_upload_bytes
    return {"max_upload_bytes": limit, "max_upload_label": f"{limit / 1e6:g} MB"}


@router.get("/jobs/{job_id}/view", response_class=HTMLResponse)
def job_page(job_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    job = session.get(Job, job_id) if is_valid_id(job_id) else None
    if job is None:
        return not_found_page(
            request,
            "There is no job with this id. Job links are private and long: "
            "check that the whole link was copied.",
        )
    owned = lifecycle.is_maker(job.client, client_of(request))
    context = {"job_id": job.id, "job": job_out(job, owned=owned).model_dump(), **_upload_limit()}
    return TEMPLATES.TemplateResponse(request, "job.html", context)


@router.get("/methods/view", response_class=HTMLResponse)
def methods_page(request: Request, session: SessionDep) -> HTMLResponse:
    """The colorization methods for people: what each does, its paper, options, expected time, whether it is
    installed here (the same facts as GET /methods)."""
    methods = method_views.methods_out(get_settings(), session)
    for method in methods:
        method["expected_label"] = about(method["expected_seconds"])
        for param in method["params"]:
            param["default_label"] = _as_shown(param["default"])
    return TEMPLATES.TemplateResponse(request, "methods.html", {"nav": "methods", "methods": methods})


def _as_shown(value: Any) -> str:
    """An option's default as a person reads it (JSON's words, "none" for an empty list)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "–"
    if isinstance(value, list | tuple) and not value:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def about(seconds: float | None) -> str | None:
    """ "about 40 s", "about 3 min" (as ``ColorLab.about`` in common.js writes it)."""
    if seconds is None:
        return None
    if seconds < 1:  # the feed-forward nets: "a few seconds" contradicted their "well under a second"
        return "under a second"
    if seconds < 5:
        return "a few seconds"

    def rounded(x: float) -> int:  # halves up, as JS's Math.round (Python's round() goes to even)
        return math.floor(x + 0.5)

    if seconds < 90:
        return f"about {rounded(seconds / 5) * 5 or 5} s"
    minutes = rounded(seconds / 60)
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60} min"


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request) -> HTMLResponse:
    context = {"nav": "compare", **_upload_limit()}
    return TEMPLATES.TemplateResponse(request, "compare.html", context)


@router.get("/compare/{group_id}/view", response_class=HTMLResponse)
def compare_view_page(group_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    rows = lifecycle.group_jobs(session, group_id)
    if not rows:
        return not_found_page(
            request,
            "There is no comparison with this id. Comparison links are private and long: "
            "check that the whole link was copied.",
        )
    found = comparison_out(group_id, rows).model_dump()
    context = {"nav": "compare", "group_id": group_id, "comparison": found}
    return TEMPLATES.TemplateResponse(request, "compare_view.html", context)


@router.get("/batches/{batch_id}/view", response_class=HTMLResponse)
def batch_page(batch_id: str, request: Request, session: SessionDep) -> HTMLResponse:
    batch = session.get(Batch, batch_id) if is_valid_id(batch_id) else None
    if batch is None:
        return not_found_page(
            request,
            "There is no batch with this id. Batch links are private and long: "
            "check that the whole link was copied.",
        )
    info = method_views.get_method(batch.method)
    context = {"nav": "colorize", "batch_id": batch.id, "method_title": info.title if info else batch.method}
    return TEMPLATES.TemplateResponse(request, "batch.html", context)


HISTORY_PAGE_SIZE = 60  # entries: a job, or a batch's or a comparison's jobs together


@router.get("/history", response_class=HTMLResponse)
def history_page(
    request: Request, session: SessionDep, page: Annotated[int, Query(ge=1, le=100_000)] = 1
) -> HTMLResponse:
    client = client_of(request)
    offset = (page - 1) * HISTORY_PAGE_SIZE
    entries: list[lifecycle.HistoryEntry] = []
    total = 0
    if client:
        entries, total = lifecycle.client_history(session, client, HISTORY_PAGE_SIZE, offset)
    cards = [
        history_card(job_out(e.first_jobs[0]).model_dump()) if e.kind == "job" else group_card(e)
        for e in entries
    ]
    pages = max(1, -(-total // HISTORY_PAGE_SIZE))
    context = {
        "entries": cards,
        "nav": "history",
        "page": page,
        "pages": pages,
        "total": total,
        "first": offset + 1,
        "last": offset + len(cards),
        "max_zip_results": MAX_ZIP_RESULTS,
    }
    return TEMPLATES.TemplateResponse(request, "history.html", context)


def history_card(job: dict[str, Any]) -> dict[str, Any]:
    """What a history card shows: the JSON form of the job plus display strings."""
    urls = job["urls"]
    return {
        **job,
        "kind": "job",
        "page_url": urls["page"],
        "title": job["source_name"] or job["method_title"],
        "thumb_url": urls["thumb"],
        "variant": rerun_label(job["method"], job["params"]) if job["rerun_of"] else None,
        **_created(job["created_at"]),
    }


def rerun_label(method: str, params: dict[str, Any]) -> str:
    """How a re-run differs at a glance ("Re-run · vividness 0.8 · 5 hints"): its sliders' values (the
    options people set in plain words) and its colour hints; else a re-run looks like its original."""
    info = method_views.get_method(method)
    words = ["Re-run"]
    for param in info.params if info else ():
        value = params.get(param.name)
        if param.ends and isinstance(value, int | float):
            words.append(f"{param.name.replace('_', ' ')} {value:g}")
    if hints := params.get("hints"):
        words.append(f"{len(hints)} hint{'s' if len(hints) != 1 else ''}")
    return " · ".join(words)


def group_card(entry: lifecycle.HistoryEntry) -> dict[str, Any]:
    """The card of a batch or a comparison: a mosaic of its first photos, what it is, how far it got (the
    same words as ``groupSummary`` in history.js, which keeps it current)."""
    first = job_out(entry.first_jobs[0]).model_dump()
    counts = Counter(entry.counts)
    if entry.kind == "batch":
        path = f"/batches/{entry.id}"
        title, subtitle = (
            f"Batch of {entry.total} photo{'' if entry.total == 1 else 's'}",
            first["method_title"],
        )
    else:
        path = f"/compare/{entry.id}"
        methods = f"{entry.total} method{'' if entry.total == 1 else 's'}"
        title, subtitle = first["source_name"] or "Comparison", f"Compared with {methods}"
    return {
        "kind": entry.kind,
        "id": entry.id,
        "status": _group_status(counts),
        "status_url": path,
        "page_url": f"{path}/view",
        "title": title,
        "subtitle": subtitle,
        "summary": group_summary(counts, entry.total),
        "done": counts[JobStatus.done],
        "total": entry.total,
        "thumb_urls": [job_out(j).urls.thumb for j in entry.first_jobs],
        **_created(entry.newest),
    }


def _group_status(counts: Counter[str]) -> str:
    """The badge of a group: running or queued while any job is, then done if any result came out."""
    for status in (JobStatus.running, JobStatus.queued, JobStatus.done, JobStatus.failed):
        if counts[status]:
            return str(status)
    return str(JobStatus.cancelled)


def group_summary(counts: Counter[str], total: int) -> str:
    """ "7 of 12 done · 1 failed", or "12 done" once all are."""
    done = counts[JobStatus.done]
    words = [f"{done} done" if done == total else f"{done} of {total} done"]
    words += [f"{counts[s]} {s}" for s in (JobStatus.failed, JobStatus.cancelled) if counts[s]]
    return " · ".join(words)


def _created(created: datetime) -> dict[str, str]:
    return {"created_iso": created.isoformat(timespec="seconds"), "created_label": _when(created)}


def _when(moment: datetime, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    seconds = (now - moment).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''} ago"
    if moment.year == now.year:
        return moment.strftime("%d %b, %H:%M UTC").lstrip("0")
    return moment.strftime("%d %b %Y").lstrip("0")
