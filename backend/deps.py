"""FastAPI dependencies shared by the routes: the request's database session, the settings, the researcher."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from sqlalchemy.orm import Session

from backend.auth import AdminSession, require_admin
from backend.config import Settings, get_settings
from backend.db import get_session

# One session per request (see backend.db.get_session for when a route should open its own instead).
SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
# The logged-in researcher (/admin): 401, or a redirect to the login page for a browser.
AdminDep = Annotated[AdminSession, Depends(require_admin)]
