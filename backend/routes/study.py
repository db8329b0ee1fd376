"""Participant flow of a user study at /study/{slug}: one page (frontend/static/study.js) and a JSON API.

The participant's session is a signed cookie scoped to the study's path carrying the secret issued at consent
(only its hash is stored); see ``backend.study.service`` for how a participant resumes elsewhere. Answers are
stored the moment they are given (idempotent per trial). Every refusal is a 4xx with a JSON ``detail`` (a
friendly page for HTML).
"""

from __future__ import annotations

import threading
import time

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from backend import ratelimit
from backend.config import Settings
from backend.deps import SessionDep, SettingsDep
from backend.errors import UserError
from backend.models import Image
from backend.study import builder, service
from backend.study.models import Participant, Stimulus, Study, Trial
from backend.study.participant_cookie import read_participant_cookie, set_participant_cookie
from backend.study.schemas import AnswerIn, StartIn, StateOut
from backend.templates import TEMPLATES
from backend.web import client_of

router = APIRouter(prefix="/study", tags=["study"])


_cache: dict[tuple[str, str], tuple[float, Study]] = {}
_cache_lock = threading.Lock()
STUDY_CACHE_SECONDS = 2.0


def _cached_study(session: Session, slug: str, *, fresh: bool = False) -> Study:
    """The study at this address. The answer path uses a copy at most STUDY_CACHE_SECONDS old (one query less
    per answer); starting a session always reads the study afresh (its open/closed status)."""
    key = (str(session.get_bind().engine.url), slug)
    now = time.monotonic()
    hit = _cache.get(key)
    if hit is not None and not fresh and now - hit[0] < STUDY_CACHE_SECONDS:
        return hit[1]
    study = builder.find_study(session, slug, slug_only=True)
    session.expunge(study)
    with _cache_lock:
        if len(_cache) > 1000:
            _cache.clear()
        _cache[key] = (now, study)
    return study


def _require_json(request: Request) -> None:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise UserError(415, "send the answer as JSON (Content-Type: application/json)")


def _me(request: Request, session: Session, settings: Settings, study: Study) -> Participant:
    cookie = read_participant_cookie(request, settings, study)
    participant = session.get(Participant, cookie[0]) if cookie else None
    if (
        cookie is None
        or participant is None
        or participant.study_id != study.id
        or not service.secret_matches(participant, cookie[1])
    ):
        raise UserError(403, "no study session in this browser: reload the page to continue")
    return participant


def _resolve(
    request: Request, session: Session, settings: Settings, study: Study, identity: service.Identity
) -> service.Found | None:
    cookie = read_participant_cookie(request, settings, study)
    return service.resolve(session, study, identity, cookie, client_of(request))


def _message(
    request: Request, status: int, heading: str, message: str, study: Study | None = None
) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        "study/message.html",
        {"heading": heading, "message": message, "study": study},
        status_code=status,
    )


@router.get("/{slug}", response_class=HTMLResponse, include_in_schema=False)
def study_page(slug: str, request: Request, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    study = builder.get_study(session, slug)
    if study is None or study.slug != slug:
        return _message(
            request,
            404,
            "Study not found",
            "There is no study at this address. Check the link you were given.",
        )
    try:
        identity = service.identity_from(dict(request.query_params))
    except UserError as exc:
        return _message(request, exc.status_code, "This link is not valid", exc.detail, study)
    try:
        found = service.resolve(
            session, study, identity, read_participant_cookie(request, settings, study), client_of(request)
        )
    except UserError as exc:
        return _message(request, exc.status_code, "This session belongs to someone else", exc.detail, study)
    if found is None and study.status != "open":
        closed = study.status == "closed"
        return _message(
            request,
            409,
            "This study is closed" if closed else "This study has not started yet",
            "It is not accepting participants at the moment." + ("" if closed else " Please try later."),
            study,
        )
    return TEMPLATES.TemplateResponse(
        request,
        "study/app.html",
        {
            "study": study,
            "labels": service.RATING_LABELS,
            "trials": study.trials_part1 + study.trials_part2 + (2 if study.attention_checks else 0),
        },
    )


def _state_out(state: dict, duplicate: bool = False) -> StateOut:
    return StateOut.model_validate({**state, "duplicate": duplicate})


@router.get("/{slug}/api/state", response_model=StateOut, summary="Where this participant is in the study")
def get_state(slug: str, request: Request, session: SessionDep, settings: SettingsDep) -> StateOut:
    study = _cached_study(session, slug)
    identity = service.identity_from(dict(request.query_params))
    found = _resolve(request, session, settings, study, identity)
    if found is not None and not found.by_cookie:
        # Proven by the Prolific pair or this browser, but without the session cookie: the page calls
        # /start (no new consent needed) to get a fresh one. Nothing is revealed or marked shown before that.
        return StateOut(study=study.slug, title=study.title, phase="resume")
    out = service.state(session, study, found.participant if found else None)
    session.commit()
    return _state_out(out)


@router.post(
    "/{slug}/api/start",
    response_model=StateOut,
    summary="Consent given: start or resume the session",
    dependencies=[Depends(_require_json)],
)
def start(
    slug: str, body: StartIn, request: Request, response: Response, session: SessionDep, settings: SettingsDep
) -> StateOut:
    study = _cached_study(session, slug, fresh=True)
    identity = service.identity_from(body.model_dump())
    found = _resolve(request, session, settings, study, identity)
    if found is None and study.status == "open":
        ratelimit.count_new_participant(request, settings)
    started = service.start(
        session,
        study,
        identity,
        found,
        user_agent=request.headers.get("user-agent"),
        browser=client_of(request),
    )
    participant = started.participant
    set_participant_cookie(response, settings, study, participant, started.secret)
    out = service.state(session, study, participant)
    session.commit()
    return _state_out(out)


@router.post(
    "/{slug}/api/begin",
    response_model=StateOut,
    summary="Instructions read: show the first image",
    dependencies=[Depends(_require_json)],
)
def begin(slug: str, request: Request, session: SessionDep, settings: SettingsDep) -> StateOut:
    study = _cached_study(session, slug)
    participant = _me(request, session, settings, study)
    service.begin(session, participant)
    out = service.state(session, study, participant)
    session.commit()
    return _state_out(out)


@router.post(
    "/{slug}/api/answer",
    response_model=StateOut,
    summary="Store one answer (idempotent per trial)",
    dependencies=[Depends(_require_json)],
)
def post_answer(
    slug: str, body: AnswerIn, request: Request, session: SessionDep, settings: SettingsDep
) -> StateOut:
    study = _cached_study(session, slug)
    participant = _me(request, session, settings, study)
    ratelimit.count_answer(participant.id, settings)
    try:
        out, duplicate = service.answer(
            session,
            study,
            participant,
            body.trial_id,
            service.Answer(response=body.response, rating=body.rating, response_ms=body.response_ms),
            grace_minutes=settings.study_close_grace_minutes,
        )
    except UserError:
        session.rollback()
        raise
    return _state_out(out, duplicate)


# Built once: the image of a trial, only for the participant it belongs to.
_TRIAL_IMAGE = (
    select(Image.data)
    .join(Stimulus, Stimulus.display_image_id == Image.id)
    .join(Trial, Trial.stimulus_id == Stimulus.id)
    .join(Participant, Participant.id == Trial.participant_id)
    .where(
        Trial.id == bindparam("tid"),
        Trial.participant_id == bindparam("pid"),
        Trial.study_id == bindparam("sid"),
        Participant.secret_hash == bindparam("secret_hash"),
    )
)


@router.get(
    "/{slug}/images/{trial_id}.jpg",
    summary="The image of one of your trials",
    responses={200: {"content": {"image/jpeg": {}}}},
)
def trial_image(
    slug: str, trial_id: str, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    study = _cached_study(session, slug)
    cookie = read_participant_cookie(request, settings, study)
    if not cookie or len(trial_id) > 32:
        raise UserError(404, "no such image")
    data = session.scalar(
        _TRIAL_IMAGE,
        {"tid": trial_id, "pid": cookie[0], "sid": study.id, "secret_hash": service.hash_secret(cookie[1])},
    )
    if data is None:
        raise UserError(404, "no such image")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
