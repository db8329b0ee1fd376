"""The Jinja2 templates of the HTML pages (frontend/templates) and what every page shares.

``status_labels`` is the one place a job status gets its words: the templates show it through the
``status_badge`` macro (``_macros.html``), and ``base.html`` hands the same labels to the pages' scripts
(``ColorLab.STATUS_LABELS`` in ``common.js``).
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from backend.models import JobStatus

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
STATUS_LABELS: dict[str, str] = {
    JobStatus.queued: "Queued",
    JobStatus.running: "Running",
    JobStatus.done: "Done",
    JobStatus.failed: "Failed",
    JobStatus.cancelled: "Cancelled",
}

TEMPLATES = Jinja2Templates(directory=FRONTEND / "templates")
TEMPLATES.env.globals["status_labels"] = {str(status): label for status, label in STATUS_LABELS.items()}


def code_spans(text: str) -> Markup:
    """Plain text whose `backquoted` parts (commands in messages, e.g. an unavailable method's reason) are
    shown as code; everything else escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


TEMPLATES.env.filters["code_spans"] = code_spans


def wants_html(request: Request) -> bool:
    """A browser navigating (not a script asking for JSON)."""
    return "text/html" in request.headers.get("accept", "")


def not_found_page(request: Request, detail: str) -> HTMLResponse:
    """The friendly 404 page, saying what was not found."""
    context = {"heading": "Page not found", "message": _not_found_message(detail)}
    return TEMPLATES.TemplateResponse(request, "404.html", context, status_code=404)


def _not_found_message(detail: str) -> str:
    detail = (detail or "").strip()
    if not detail or detail == "Not Found":
        return "There is nothing at this address. Check the link, or start from the pages below."
    return detail[0].upper() + detail[1:] + ("" if detail.endswith(".") else ".")
