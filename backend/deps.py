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
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")
        raise UserError(303, "log in first", headers={"Location": f"/admin/login?next={target}"})
    raise UserError(401, "log in at /admin/login first")


AdminDep = Annotated[AdminSession, Depends(current_admin)]
