"""The participant's session cookie: signed, scoped to the study's path, carrying the secret issued at consent
(the database keeps only its hash; ``backend.study.participants`` tells how a participant resumes elsewhere).
"""

from __future__ import annotations

from fastapi import Request, Response
from itsdangerous import BadSignature

from backend.auth import serializer
from backend.config import Settings
from backend.study.models import Participant, Study

COOKIE = "colorlab_participant"
COOKIE_DAYS = 60


def read_participant_cookie(request: Request, settings: Settings, study: Study) -> tuple[str, str] | None:
    """(participant id, session secret) from this browser's cookie for this study, if its signature holds."""
    raw = request.cookies.get(COOKIE)
    if not raw or len(raw) > 300:
        return None
    try:
        data = serializer(settings, "study-participant").loads(raw)
    except BadSignature:
        return None
    if (
        isinstance(data, list)
        and len(data) == 3
        and data[0] == study.id
        and all(isinstance(v, str) for v in data)
    ):
        return data[1], data[2]
    return None


def set_participant_cookie(
    response: Response, settings: Settings, study: Study, participant: Participant, secret: str
) -> None:
    value = serializer(settings, "study-participant").dumps([study.id, participant.id, secret])
    response.set_cookie(
        COOKIE,
        value,
        max_age=COOKIE_DAYS * 86400,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        path=f"/study/{study.slug}",
    )
