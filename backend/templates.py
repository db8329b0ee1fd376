"""The Jinja2 templates of the HTML pages (frontend/templates) and what every page shares.

``status_labels`` is the one place a job status gets its words: the templates show it through the
``status_badge`` macro (``_macros.html``), and ``base.html`` hands the same labels to the pages' scripts
(``ColorLab.STATUS_LABELS`` in ``common.js``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape

from backend.config import get_settings
from backend.models import JobStatus
from backend.static_files import static_url

FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
STATUS_LABELS: dict[str, str] = {
    JobStatus.queued: "Queued",
    JobStatus.running: "Running",
    JobStatus.done: "Done",
    JobStatus.failed: "Failed",
    JobStatus.cancelled: "Cancelled",
}

TEMPLATES = Jinja2Templates(directory=FRONTEND / "templates")
TEMPLATES.env.globals["static_url"] = static_url  # assets by content: browsers keep them (static_files)
TEMPLATES.env.globals["status_labels"] = {str(status): label for status, label in STATUS_LABELS.items()}
# The footer links the API docs only where they are served (off in production unless API_DOCS=true).
TEMPLATES.env.globals["api_docs_shown"] = lambda: get_settings().docs_enabled


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
    return TEMPLATES.TemplateResponse(request, "error.html", context, status_code=404)


ERROR_HEADINGS = {
    401: "Log in first",
    403: "Not sent",
    409: "Not possible right now",
    413: "Too large",
    415: "Not a photo this server reads",
    422: "Not accepted",
    429: "Too many requests",
}


def error_page(
    request: Request, status_code: int, detail: str, headers: Mapping[str, str] | None
) -> HTMLResponse:
    """A refusal a browser navigated to (a form posted with an expired token, say): the reason in words and
    a way back to the page it came from, instead of a JSON body."""
    context = {
        "status_code": status_code,
        "heading": ERROR_HEADINGS.get(status_code, "Something went wrong"),
        "message": _sentence(detail),
        "back_url": same_site_referer(request),
    }
    return TEMPLATES.TemplateResponse(
        request, "error.html", context, status_code=status_code, headers=headers
    )


def same_site_referer(request: Request) -> str | None:
    """The path of the page of this site the request came from, if it says so. A path a browser would read
    as another host's address (``//evil.example/x``; ``/\\evil.example``, as browsers take ``\\`` for ``/``)
    is none: it would make the page's link leave the site."""
    referer = urlsplit(request.headers.get("referer", ""))
    path = referer.path
    if (
        referer.netloc != request.url.netloc
        or not path.startswith("/")
        or path.startswith("//")
        or "\\" in path
    ):
        return None
    return referer.path + (f"?{referer.query}" if referer.query else "")


def _sentence(detail: str) -> str:
    detail = (detail or "").strip()
    return detail[:1].upper() + detail[1:] + ("" if not detail or detail.endswith(".") else ".")


def _not_found_message(detail: str) -> str:
    detail = (detail or "").strip()
    if not detail or detail == "Not Found":
        return "There is nothing at this address. Check the link, or start from the pages below."
    return _sentence(detail)
