"""FastAPI dependencies shared by the routes: the request's database session, the settings, the researcher."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from backend.auth import AdminSession, read_session
from backend.config import Settings, get_settings
from backend.db import get_session
from backend.errors import UserError
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
