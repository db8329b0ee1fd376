"""Participant flow of a user study at /study/{slug}: one page (frontend/static/study.js) and a JSON API.

The participant's session is a signed cookie scoped to the study's path carrying the secret issued at consent
(only its hash is stored); see ``backend.study.participants`` for how a participant resumes elsewhere.
Answers are stored the moment they are given (idempotent per trial). Every refusal is a 4xx with a JSON
``detail`` (a friendly page for HTML).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse
from jinja2.utils import htmlsafe_json_dumps
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from backend import ratelimit
from backend.config import Settings, get_settings
from backend.db import DriverStatement, session_scope, statement_scope
from backend.deps import SettingsDep
from backend.errors import UserError
from backend.schemas import errors
from backend.study import builder, participants
from backend.study.display_images import DISPLAY_IMAGES
from backend.study.models import Participant, Stimulus, Study, Trial
from backend.study.participant_cookie import read_participant_cookie, set_participant_cookie
from backend.study.schemas import AnswerIn, BeginIn, StartIn, StateOut
from backend.templates import TEMPLATES
from backend.web import UniqueKeysJsonRoute, client_of

router = APIRouter(prefix="/study", tags=["study"], route_class=UniqueKeysJsonRoute)
# The refusals a participant's JSON request may get besides its own (OpenAPI; each a UserError's
# {"detail": ...}): 403 no session in this browser or someone else's, 404 no such study, 408/413 a stalled or
# too large body, 415 not JSON, 422 a body or id that cannot be used.
_JSON_POST = (403, 404, 408, 413, 415, 422)
T = TypeVar("T")


async def _in_study_thread(work: Callable[[], T], lane: str = "study") -> T:
    """Run a participant request's database work in STUDY_THREADS threads of their own: a study in progress
    does not wait behind a researcher's export or a batch upload, and few threads serve a crowd of
    participants faster than many (they only contend for the same cores; benchmarks/RESULTS.md). Answers
    have a lane of their own (``study-answers``): a participant in mid-study does not queue behind a crowd
    that is opening the link (answer p99 65–81 ms against 173–295 ms with one lane, 200 openings in a
    second)."""
    executor = _study_executor(lane, get_settings().study_threads)
    return await asyncio.get_running_loop().run_in_executor(executor, work)


@functools.lru_cache
def _study_executor(lane: str, size: int) -> ThreadPoolExecutor:
    # asyncio's own hand-off to a thread: a third of the CPU of anyio's (limiter, cancel scope), for the
    # requests a crowd of participants makes. The work needs no context variables.
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix=lane)


async def _require_json(request: Request) -> None:  # async: no thread hand-off
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise UserError(415, "send the request body as JSON (Content-Type: application/json), e.g. {}")


def _me(request: Request, session: Session, settings: Settings, study: Study) -> Participant:
    participant = participants.cookie_owner(session, study, read_participant_cookie(request, settings, study))
    if participant is None:
        raise UserError(403, "no study session in this browser: reload the page to continue")
    return participant


def _resolve(
    request: Request, session: Session, settings: Settings, study: Study, identity: participants.Identity
) -> participants.Found | None:
    cookie = read_participant_cookie(request, settings, study)
    return participants.resolve(session, study, identity, cookie, client_of(request))


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
async def study_page(slug: str, request: Request, settings: SettingsDep) -> HTMLResponse:
    # async, with the database work in one thread call and its own short session: the participant routes
    # are what a crowd opening a study link hits (benchmarks/RESULTS.md, "User study"). The page carries
    # the participant's state, which study.js would otherwise fetch with a second request.
    try:
        identity: participants.Identity | None = participants.identity_from(dict(request.query_params))
        bad_link = None
    except UserError as exc:
        identity, bad_link = None, exc

    def look_up() -> tuple[Study | None, dict | None, UserError | None]:
        with statement_scope() as session:
            try:
                study = builder.cached_study(session, slug)
            except UserError:
                return None, None, None
            if identity is None:
                return study, None, None
            cookie = read_participant_cookie(request, settings, study)
            try:
                found = participants.resolve(session, study, identity, cookie, client_of(request))
            except UserError as exc:
                return study, None, exc
            if found is None and study.status != "open":
                return study, None, None
            return study, _state_of(session, settings, study, found), None

    study, state, taken = await _in_study_thread(look_up)
    if study is None:
        return _message(
            request,
            404,
            "Study not found",
            "There is no study at this address. Check the link you were given.",
        )
    if bad_link is not None:
        return _message(request, bad_link.status_code, "This link is not valid", bad_link.detail, study)
    if taken is not None:
        heading = "This session belongs to someone else"
        return _message(request, taken.status_code, heading, taken.detail, study)
    if state is None:
        closed = study.status == "closed"
        return _message(
            request,
            409,
            "This study is closed" if closed else "This study has not started yet",
            "It is not accepting participants at the moment." + ("" if closed else " Please try later."),
            study,
        )
    before, after = _app_page(study)
    # Someone's state (a trial, a completion code): never kept by a cache, never shown again from one.
    headers = {"Cache-Control": "no-store"}
    return HTMLResponse(before + _script_json(_state_json(state)) + after, headers=headers)


_STATE_SLOT = "\x00initial-state\x00"  # where the participant's state goes in the rendered page
_rendered: dict[str, tuple[Study, tuple[str, str]]] = {}


def _app_page(study: Study) -> tuple[str, str]:
    """The participant page before and after its state: the same for everyone, so it is rendered once per
    copy of the study that builder.cached_study hands out, not once per participant of a crowd."""
    hit = _rendered.get(study.slug)
    if hit is not None and hit[0] is study:
        return hit[1]
    parts = study.parts
    html = TEMPLATES.get_template("study/app.html").render(
        study=study,
        parts=parts,
        labels=participants.RATING_LABELS,
        # an attention check joins each part that has trials
        trials=study.trials_part1 + study.trials_part2 + (len(parts) if study.attention_checks else 0),
        initial_state=_STATE_SLOT,
    )
    before, after = html.split(_STATE_SLOT)
    if len(_rendered) > 1000:
        _rendered.clear()
    _rendered[study.slug] = (study, (before, after))
    return before, after


def _script_json(text: str) -> str:
    """JSON text made safe inside a <script> element by the escaping of Jinja's ``tojson`` (none of its
    characters can end the element or open a comment); the text is JSON already, so it is not dumped again."""
    return str(htmlsafe_json_dumps(text, dumps=lambda already_json, **_: already_json))


def _state_of(session: Session, settings: Settings, study: Study, found: participants.Found | None) -> dict:
    if found is not None and not found.by_cookie:
        # Proven by the Prolific pair or this browser, but without the session cookie: the page calls
        # /start (no new consent needed) to get a fresh one. Nothing is revealed or shown first.
        return {"study": study.slug, "title": study.title, "phase": "resume"}
    participant = found.participant if found else None
    return participants.state(session, study, participant, grace_minutes=settings.study_close_grace_minutes)


def _state_json(state: dict, duplicate: bool = False) -> str:
    # Checked against StateOut (the documented shape) and sent as is: returning a Response spares FastAPI's
    # second validation and encoding of the model, on every request of every participant.
    return StateOut.model_validate({**state, "duplicate": duplicate}).model_dump_json()


def _state_out(state: dict, duplicate: bool = False) -> Response:
    body = _state_json(state, duplicate)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.get(
    "/{slug}/api/state",
    response_model=StateOut,
    responses=errors(403, 404, 422),
    summary="Where this participant is in the study",
)
async def get_state(slug: str, request: Request, settings: SettingsDep) -> Response:
    identity = participants.identity_from(dict(request.query_params))

    def work() -> Response:
        with statement_scope() as session:
            study = builder.cached_study(session, slug)
            found = _resolve(request, session, settings, study, identity)
            return _state_out(_state_of(session, settings, study, found))

    return await _in_study_thread(work)


@router.post(
    "/{slug}/api/start",
    response_model=StateOut,
    responses=errors(*_JSON_POST, 409, 429),  # 409 the study is not open; 429 too many new participants
    summary="Consent given: start or resume the session",
    dependencies=[Depends(_require_json)],
)
async def start(slug: str, body: StartIn, request: Request, settings: SettingsDep) -> Response:
    identity = participants.identity_from(body.model_dump())

    def work() -> Response:
        with statement_scope() as session:
            # A new participant's draw checks that the study is still open; a copy that is not open is
            # read again, as the study may have opened since.
            study = builder.cached_study(session, slug)
            if study.status != "open":
                study = builder.cached_study(session, slug, fresh=True)
            found = _resolve(request, session, settings, study, identity)
            if found is None and study.status == "open":
                ratelimit.count_new_participant(request, settings)
            started = participants.start(
                session,
                study,
                identity,
                found,
                user_agent=request.headers.get("user-agent"),
                browser=client_of(request),
            )
            participant = started.participant
            grace = settings.study_close_grace_minutes
            response = _state_out(participants.state(session, study, participant, grace_minutes=grace))
            set_participant_cookie(response, settings, study, participant, started.secret)
            return response

    return await _in_study_thread(work)


@router.post(
    "/{slug}/api/begin",
    response_model=StateOut,
    responses=errors(*_JSON_POST),
    summary="Instructions read: show the first image",
    dependencies=[Depends(_require_json)],
)
async def begin(slug: str, body: BeginIn, request: Request, settings: SettingsDep) -> Response:
    def work() -> Response:
        with statement_scope() as session:
            study = builder.cached_study(session, slug)
            participant = _me(request, session, settings, study)
            grace = settings.study_close_grace_minutes
            closed = participants.answers_closed(study, participant, grace)
            trials = None if closed else participants.begin(session, participant)
            return _state_out(participants.state(session, study, participant, trials, grace_minutes=grace))

    return await _in_study_thread(work)


@router.post(
    "/{slug}/api/answer",
    response_model=StateOut,
    responses=errors(*_JSON_POST, 409, 429),  # 409 out of turn or closed; 429 answers too fast
    summary="Store one answer (idempotent per trial)",
    dependencies=[Depends(_require_json)],
)
async def post_answer(slug: str, body: AnswerIn, request: Request, settings: SettingsDep) -> Response:
    answer = participants.Answer(response=body.response, rating=body.rating, response_ms=body.response_ms)

    def work() -> Response:
        with session_scope() as session:  # a refusal rolls back: nothing is stored
            study = builder.cached_study(session, slug)
            participant = _me(request, session, settings, study)
            ratelimit.count_answer(participant.id, settings)
            out, duplicate = participants.answer(
                session,
                study,
                participant,
                body.trial_id,
                answer,
                grace_minutes=settings.study_close_grace_minutes,
            )
            return _state_out(out, duplicate)

    return await _in_study_thread(work, lane="study-answers")


# Built once: the image of a trial, only for the participant it belongs to.
_TRIAL_IMAGE_ID = DriverStatement(
    select(Stimulus.display_image_id)
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
    response_class=Response,
    responses={
        **errors(404),
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}},
    },
)
async def trial_image(slug: str, trial_id: str, request: Request, settings: SettingsDep) -> Response:
    def work() -> bytes | None:
        with statement_scope() as session:
            study = builder.cached_study(session, slug)
            cookie = read_participant_cookie(request, settings, study)
            if not cookie or len(trial_id) > 32:
                return None
            params = {
                "tid": trial_id,
                "pid": cookie[0],
                "sid": study.id,
                "secret_hash": participants.hash_secret(cookie[1]),
            }
            image_id = _TRIAL_IMAGE_ID.scalar(session, params)
            return None if image_id is None else DISPLAY_IMAGES.jpeg(session, image_id)

    data = await _in_study_thread(work)
    if data is None:
        raise UserError(404, "no such image")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
