"""Researcher area /admin (login required): studies, the study builder, live results and exports."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Form, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from itsdangerous import BadSignature
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.datastructures import UploadFile

from backend import auth, method_views
from backend.auth import AdminSession
from backend.config import Settings
from backend.db import session_factory
from backend.deps import AdminDep, SessionDep, SettingsDep
from backend.errors import UserError
from backend.models import Image
from backend.study import builder, export, participants
from backend.study.models import (
    Participant,
    ParticipantStatus,
    Stimulus,
    Study,
    StudyTexts,
    Trial,
)
from backend.study.participant_cookie import set_participant_cookie
from backend.study.photos import PhotoFile, from_zip
from backend.study.rating_plots import study_charts
from backend.study.results import attention_outcomes, study_summary
from backend.templates import TEMPLATES, wants_html
from backend.web import client_limit_key, content_disposition

router = APIRouter(prefix="/admin", tags=["admin"], include_in_schema=False)
PAGE_REFRESH_BUDGET_S = 3.0  # seconds a study page spends making display copies of finished colorizations
DELETED_COOKIE = "colorlab_deleted_study"  # which study this browser just deleted (signed)
DELETED_NOTICE_S = 300  # seconds /admin may say so (a reload shows it again)


def _page(request: Request, name: str, context: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(
        request,
        f"admin/{name}",
        {
            "nav": "admin",
            "limits": builder.TEXT_LIMITS,
            "standard_instructions": builder.STANDARD_INSTRUCTIONS,
            **context,
        },
        status_code=status_code,
    )


def _safe_next(target: str | None) -> str:
    if not target:
        return "/admin"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin") or "\\" in target:
        return "/admin"
    return target


def _base_url(request: Request) -> str:
    """This server's address as the researcher reached it (behind a proxy: its forwarded scheme and host)."""
    return str(request.base_url).rstrip("/")


SESSION_ENDED = "Your session had ended, so what you sent was not saved: log in, then send it again."
LOGIN_FORM_EXPIRED = "The login form had expired: enter the password again."


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, settings: SettingsDep, next: str | None = None, expired: bool = False
) -> Response:
    if auth.read_session(request, settings) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _login_form(request, settings, next, SESSION_ENDED if expired else None)


def _login_form(
    request: Request, settings: Settings, next: str | None, error: str | None, status_code: int = 200
) -> Response:
    token, cookie = auth.login_csrf(request, settings)
    context = {"next": _safe_next(next), "error": error, "csrf": token}
    response = _page(request, "login.html", context, status_code=status_code)
    if cookie:
        auth.set_login_csrf_cookie(response, settings, cookie)
    return response


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    settings: SettingsDep,
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=500)] = "/admin",
) -> Response:
    try:
        auth.check_login_csrf(request, settings, csrf_token)
    except UserError:
        if not wants_html(request):
            raise
        return _login_form(request, settings, next, LOGIN_FORM_EXPIRED, status_code=403)
    client = client_limit_key(request)  # as the rate limits count it: an IPv6 client per /64
    if not auth.reserve_login_attempt(client):
        raise UserError(429, "too many failed logins; wait a few minutes", headers={"Retry-After": "300"})
    if not auth.check_password(password, settings):
        return _page(
            request,
            "login.html",
            {"next": _safe_next(next), "error": "Wrong password.", "csrf": csrf_token},
            status_code=401,
        )
    auth.login_succeeded(client)
    response = RedirectResponse(_safe_next(next), status_code=303)
    auth.start_session(response, settings)
    return response


@router.post("/logout")
def logout(
    admin: AdminDep, settings: SettingsDep, csrf_token: Annotated[str, Form(max_length=200)] = ""
) -> Response:
    auth.check_csrf(admin, csrf_token)
    response = RedirectResponse("/admin/login", status_code=303)
    auth.end_session(response, admin, settings)
    return response


@router.get("", response_class=HTMLResponse)
def index(
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    deleted: Annotated[str | None, Query(max_length=200, description="The study just deleted.")] = None,
) -> HTMLResponse:
    studies = list(session.scalars(select(Study).order_by(Study.created_at.desc())))
    counts = builder.participant_counts(session)
    notice = deleted if _deleted_here(request, session, settings, deleted) else None
    context = {"studies": studies, "counts": counts, "csrf": admin.csrf, "deleted": notice}
    return _page(request, "index.html", context)


def _note_deletion(response: Response, settings: Settings, slug: str) -> None:
    """Remember in this browser, signed, which study it just deleted: the notice on /admin shows only then,
    so that a link (``/admin?deleted=main-study``) cannot announce a deletion that did not happen."""
    response.set_cookie(
        DELETED_COOKIE,
        auth.serializer(settings, "deleted-study").dumps(slug),
        max_age=DELETED_NOTICE_S,
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
        path="/admin",
    )


def _deleted_here(request: Request, session: Session, settings: Settings, slug: str | None) -> bool:
    """Whether this browser deleted the study ``slug`` a moment ago (its signed cookie says so) and no study
    has that slug now. Anything else shows no notice: the page itself is what was asked for."""
    raw = request.cookies.get(DELETED_COOKIE)
    if not slug or not raw or len(raw) > 1000:
        return False
    try:
        noted = auth.serializer(settings, "deleted-study").loads(raw, max_age=DELETED_NOTICE_S)
    except BadSignature:  # SignatureExpired included
        return False
    return noted == slug and session.scalar(select(Study.id).where(Study.slug == slug)) is None


def _photo_limits(settings: Settings) -> str:
    # MB written as the upload page writes its limit (pages._upload_limit)
    each, total = settings.max_upload_bytes / 1e6, settings.batch_max_bytes / 1e6
    return f"Each photo up to {each:g} MB, {total:g} MB in all (the zip file too)."


def _method_choices(settings: Settings) -> list[dict[str, Any]]:
    return [m for m in method_views.methods_out(settings) if not m["needs_reference"]]


@router.get("/studies/new", response_class=HTMLResponse)
def new_study(request: Request, admin: AdminDep, settings: SettingsDep) -> HTMLResponse:
    return _page(
        request,
        "new.html",
        {
            "csrf": admin.csrf,
            "methods": _method_choices(settings),
            "photo_limits": _photo_limits(settings),
            "error": None,
            "form": {
                "trials_part1": 5,
                "trials_part2": 5,
                "instructions": builder.DEFAULT_INSTRUCTIONS,
                "consent_text": builder.DEFAULT_CONSENT,
            },
        },
    )


def _int(value: Any, name: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise UserError(422, f"{name} must be a whole number") from None


async def _photos(form: Any, settings: Settings) -> list[PhotoFile]:
    photos: list[PhotoFile] = []
    for item in form.getlist("photos"):
        if isinstance(item, UploadFile) and item.filename:
            data = await item.read(settings.max_upload_bytes + 1)
            if len(data) > settings.max_upload_bytes:
                raise UserError(
                    413, f"{item.filename} is larger than the {settings.max_upload_bytes:,}-byte limit"
                )
            photos.append(PhotoFile(item.filename, data))
    archive = form.get("archive")
    if isinstance(archive, UploadFile) and archive.filename:
        # Unpacking takes a while (up to 5,000 entries, 20 photos' worth of bytes): off the event loop.
        photos.extend(await run_in_threadpool(from_zip, await archive.read(), settings))
    return photos


@router.post("/studies", response_class=HTMLResponse)
async def create_study(
    request: Request, admin: AdminDep, session: SessionDep, settings: SettingsDep
) -> Response:
    form = await request.form(max_files=builder.MAX_TRIALS * 100, max_fields=100)
    auth.check_csrf(admin, str(form.get("csrf_token") or ""))
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    try:
        spec = builder.StudySpec(
            title=values.get("title", ""),
            methods=[str(m) for m in form.getlist("methods")],
            trials_part1=_int(values.get("trials_part1", "5"), "trials in part 1"),
            trials_part2=_int(values.get("trials_part2", "5"), "trials in part 2"),
            instructions=values.get("instructions", ""),
            consent_text=values.get("consent_text", ""),
            completion_code=values.get("completion_code"),
            redirect_url=values.get("redirect_url"),
            attention_checks=values.get("attention_checks") == "on",
            slug=values.get("slug"),
        )
        photos = await _photos(form, settings)
        # Decoding, graying and resizing the photos takes a while: off the event loop.
        study = await run_in_threadpool(builder.create_study, session, settings, spec, photos)
    except UserError as exc:
        session.rollback()
        return _page(
            request,
            "new.html",
            {
                "csrf": admin.csrf,
                "methods": _method_choices(settings),
                "photo_limits": _photo_limits(settings),
                "error": exc.detail,
                "form": {**values, "methods": form.getlist("methods")},
                # Without the page's script the browser drops the chosen files: say so.
                "photos_dropped": any(
                    isinstance(f, UploadFile) and f.filename
                    for f in [*form.getlist("photos"), form.get("archive")]
                ),
            },
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/admin/studies/{study.slug}", status_code=303)


PARTICIPANTS_SHOWN = 500


def _participants_context(session: Session, study: Study) -> dict[str, Any]:
    answered = dict(
        session.execute(
            select(Trial.participant_id, func.count())
            .where(Trial.study_id == study.id, Trial.answered_at.is_not(None))
            .group_by(Trial.participant_id)
        ).all()
    )
    people = list(
        session.scalars(
            select(Participant)
            .where(Participant.study_id == study.id, Participant.is_preview.is_(False))
            .order_by(Participant.consented_at.desc())
            .limit(PARTICIPANTS_SHOWN)
        )
    )
    versions = list(
        session.scalars(
            select(StudyTexts).where(StudyTexts.study_id == study.id).order_by(StudyTexts.version.desc())
        )
    )
    return {
        "people": people,
        "answered": answered,
        "attention": attention_outcomes(session, study) if study.attention_checks else None,
        "text_versions": versions,
        "participant_count": builder.participant_count(session, study),
    }


def _results_context(session: Session, study: Study, exclude: bool) -> dict[str, Any]:
    summary = study_summary(session, study, exclude_failed_attention=exclude)
    thumbs: dict[str, dict[str, str]] = {}
    for stim_id, photo_id, condition in session.execute(
        select(Stimulus.id, Stimulus.photo_id, Stimulus.condition).where(
            Stimulus.study_id == study.id, Stimulus.display_image_id.is_not(None)
        )
    ):
        thumbs.setdefault(photo_id, {})[condition] = stim_id
    return {"summary": summary, "charts": study_charts(summary), "exclude": exclude, "thumbs": thumbs}


@router.get("/studies/{slug}", response_class=HTMLResponse)
def admin_study_page(
    slug: str,
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    exclude: bool = False,
) -> HTMLResponse:
    study = builder.find_study(session, slug)
    readiness = builder.refresh(session, settings, study, budget_s=PAGE_REFRESH_BUDGET_S)
    return _study_page(request, admin, session, settings, study, readiness, exclude=exclude)


def _study_page(
    request: Request,
    admin: AdminSession,
    session: Session,
    settings: Settings,
    study: Study,
    readiness: builder.Readiness,
    *,
    exclude: bool = False,
    error: str | None = None,
    texts_error: str | None = None,
    texts_typed: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    shown = {k: getattr(study, k) for k in ("title", "consent_text", "instructions")}
    context = {
        "study": study,
        "readiness": readiness,
        "csrf": admin.csrf,
        "error": error,
        "texts_error": texts_error,
        "texts": {**shown, **(texts_typed or {})},
        "public_link": f"{_base_url(request)}/study/{study.slug}",
        "start_rate": settings.study_start_rate,
        "grace_minutes": f"{settings.study_close_grace_minutes:g}",
        # a closed study: until when those who had started may still answer
        "answers_until": study.answers_until(settings.study_close_grace_minutes),
        **_results_context(session, study, exclude),
        **_participants_context(session, study),
    }
    return _page(request, "study.html", context, status_code=status_code)


@router.get("/studies/{slug}/results", response_class=HTMLResponse)
def results_fragment(
    slug: str, request: Request, admin: AdminDep, session: SessionDep, exclude: bool = False
) -> Response:
    """The results panel alone, which the study page fetches to stay live; opened in the browser's address
    bar (a bookmark), it leads to the whole study page instead."""
    study = builder.find_study(session, slug)
    if request.headers.get("sec-fetch-mode") == "navigate":
        view = "?exclude=true" if exclude else ""
        return RedirectResponse(f"/admin/studies/{study.slug}{view}", status_code=303)
    return _page(request, "_results.html", {"study": study, **_results_context(session, study, exclude)})


def _action(
    request: Request,
    admin: AdminSession,
    session: Session,
    settings: Settings,
    slug: str,
    csrf_token: str,
    action: str,
) -> Response:
    auth.check_csrf(admin, csrf_token)
    study = builder.find_study(session, slug)
    try:
        if action == "open":
            builder.open_study(session, settings, study)
        elif action == "close":
            builder.close_study(session, study)
        elif action == "delete":
            builder.delete_study(session, study, grace_minutes=settings.study_close_grace_minutes)
            done = RedirectResponse(f"/admin?{urlencode({'deleted': study.slug})}", status_code=303)
            _note_deletion(done, settings, study.slug)
            return done
        else:
            builder.retry_failed(session, study)
    except UserError as exc:
        session.rollback()
        readiness = builder.refresh(session, settings, study)
        return _study_page(
            request, admin, session, settings, study, readiness, error=exc.detail, status_code=exc.status_code
        )
    return RedirectResponse(f"/admin/studies/{study.slug}", status_code=303)


@router.post("/studies/{slug}/texts", response_class=HTMLResponse)
def edit_texts(
    slug: str,
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
    title: Annotated[str, Form(max_length=1000)] = "",
    consent_text: Annotated[str, Form(max_length=20000)] = "",
    instructions: Annotated[str, Form(max_length=20000)] = "",
) -> Response:
    """Edit the participant-facing texts: in place while a draft, as a new version once opened."""
    auth.check_csrf(admin, csrf_token)
    study = builder.find_study(session, slug)
    try:
        builder.edit_texts(session, study, title=title, consent_text=consent_text, instructions=instructions)
    except UserError as exc:
        session.rollback()
        # The page again, the error beside the texts as typed (an error page would lose them).
        typed = {"title": title, "consent_text": consent_text, "instructions": instructions}
        readiness = builder.refresh(session, settings, study)
        return _study_page(
            request,
            admin,
            session,
            settings,
            study,
            readiness,
            texts_error=exc.detail,
            texts_typed=typed,
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/admin/studies/{study.slug}#texts", status_code=303)


@router.post("/studies/{slug}/preview")
def preview(
    slug: str,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Walk the study as a participant would, in this browser; nothing is recorded (participants.start)."""
    auth.check_csrf(admin, csrf_token)
    study = builder.find_study(session, slug)
    if not builder.refresh(session, settings, study, budget_s=PAGE_REFRESH_BUDGET_S).complete:
        raise UserError(409, "the preview needs every stimulus ready")
    previews = select(Participant.id).where(
        Participant.study_id == study.id, Participant.is_preview.is_(True)
    )
    session.execute(delete(Trial).where(Trial.participant_id.in_(previews)))
    session.execute(delete(Participant).where(Participant.id.in_(previews)))
    session.commit()
    started = participants.start(session, study, participants.Identity(None, "anonymous"), preview=True)
    # #consent: the page shows the consent text first, as a participant sees it (the preview has consented)
    response = RedirectResponse(f"/study/{study.slug}#consent", status_code=303)
    set_participant_cookie(response, settings, study, started.participant, started.secret)
    return response


PARTICIPANT_ACTIONS = ("exclude", "include", "returned", "timed_out", "release", "delete")


@router.post("/studies/{slug}/participants/{participant_id}/{action}")
def participant_action(
    slug: str,
    participant_id: str,
    action: str,
    admin: AdminDep,
    session: SessionDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Mark a participant (excluded / returned / timed out: kept, left out of the results), make them count
    again, release their id so that it binds afresh on another device, or delete them with their answers."""
    auth.check_csrf(admin, csrf_token)
    if action not in PARTICIPANT_ACTIONS:
        raise UserError(404, f"participant actions are {', '.join(PARTICIPANT_ACTIONS)}")
    study = builder.find_study(session, slug)
    person = session.get(Participant, participant_id[:32])
    if person is None or person.study_id != study.id or person.is_preview:
        raise UserError(404, "no such participant in this study")
    if action == "delete":
        session.execute(delete(Trial).where(Trial.participant_id == person.id))
        session.delete(person)
    elif action == "release":
        person.secret_hash = None
        person.prolific_session_id = None
    else:
        person.status = {
            "exclude": ParticipantStatus.excluded,
            "include": ParticipantStatus.active,
            "returned": ParticipantStatus.returned,
            "timed_out": ParticipantStatus.timed_out,
        }[action]
    session.commit()
    return RedirectResponse(f"/admin/studies/{study.slug}#participants", status_code=303)


@router.post("/studies/{slug}/{action}", response_class=HTMLResponse)
def study_action(
    slug: str,
    action: Literal["open", "close", "retry", "delete"],
    request: Request,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """Open or close a study, retry its failed colorizations, or delete a study that is not open."""
    return _action(request, admin, session, settings, slug, csrf_token, action)


@router.get("/studies/{slug}/export/{kind}.{fmt}")
def export_file(
    slug: str,
    kind: str,
    fmt: str,
    admin: AdminDep,
    session: SessionDep,
    settings: SettingsDep,
    exclude: bool = False,
) -> Response:
    """``exclude``: the summary leaves out participants who failed an attention check (the page's toggle)."""
    options = export.ExportOptions(settings.study_fast_answer_ms, exclude_failed_attention=exclude)
    if (kind, fmt) == ("all", "zip"):
        study = builder.find_study(session, slug)
        data = export.zip_all(session_factory(), study.id, options)
        return Response(
            data,
            media_type="application/zip",
            headers={
                "Content-Disposition": content_disposition(f"{study.slug}-export.zip"),
                "Cache-Control": "no-store",
            },
        )
    if kind not in export.KINDS or fmt not in ("csv", "json"):
        raise UserError(404, f"exports are {', '.join(export.KINDS)} as .csv or .json, or all.zip")
    study = builder.find_study(session, slug)
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    filename = f"{study.slug}-{options.file_name(kind, fmt)}"
    return StreamingResponse(
        export.stream(session_factory(), study.id, kind, fmt, options),
        media_type=media,
        headers={"Content-Disposition": content_disposition(filename), "Cache-Control": "no-store"},
    )


@router.get("/studies/{slug}/stimuli/{stimulus_id}.jpg")
def stimulus_image(slug: str, stimulus_id: str, admin: AdminDep, session: SessionDep) -> Response:
    study = builder.find_study(session, slug)
    data = session.scalar(
        select(Image.data)
        .join(Stimulus, Stimulus.display_image_id == Image.id)
        .where(Stimulus.id == stimulus_id[:32], Stimulus.study_id == study.id)
    )
    if data is None:
        raise UserError(404, "no such stimulus image (not ready yet?)")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})
