"""Building a study: validate its settings, store the photos and their gray inputs, queue the colorizations
through the normal job pipeline, register the stimuli; readiness, opening and closing.
"""

from __future__ import annotations

import re
import secrets
import threading
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from typing import NamedTuple
from urllib.parse import urlsplit

import numpy as np
from sqlalchemy import and_, case, delete, func, select, update
from sqlalchemy.orm import Session, undefer

from backend import job_lifecycle as lifecycle
from backend import method_choice, method_views
from backend.config import Settings
from backend.db import rowcount
from backend.errors import UserError
from backend.images import decode, gray_png
from backend.models import Image, Job, JobStatus, utcnow
from backend.stored_images import Freed, Upload, delete_unused_images, display_name, store_image, store_result
from backend.study.models import (
    ATTENTION,
    REAL,
    Participant,
    ParticipantStatus,
    Stimulus,
    Study,
    StudyPhoto,
    StudyStatus,
    StudyTexts,
    Trial,
    parts_of,
)
from backend.study.photos import PhotoFile, decode_photo, store_display
from worker.colorizers import lab

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{1,62}[a-z0-9])\Z")
MAX_TRIALS = 50
# Longest participant-facing texts (characters); the forms give them as maxlength, so a longer paste is cut in
# the browser instead of sending texts the server would refuse.
TEXT_LIMITS = {"title": 200, "consent_text": 10_000, "instructions": 5_000}

DEFAULT_CONSENT = (
    "This study is part of research on automatic photo colorization. You will look at a series of photos "
    "and answer a question about each; it takes a few minutes. Taking part is voluntary and you may stop at "
    "any time by closing the page. We record your answers, how long each took, and the participant id from "
    "the link (or a random id); nothing else about you. The data are used for research only."
)
DEFAULT_INSTRUCTIONS = (
    "Part 1: you will see one image at a time. Decide whether it is a real photo or a photo colorized by a "
    "computer from a black-and-white original. Part 2: rate how well each image is coloured, from 1 star "
    "(no colour) to 4 stars (perfect). Answer with your first impression; there is no time limit."
)
# The standard instructions of a study with one part only: they must not mention a part it does not have.
DEFAULT_INSTRUCTIONS_PART1 = (
    "You will see one image at a time. Decide whether it is a real photo or a photo colorized by a computer "
    "from a black-and-white original. Answer with your first impression; there is no time limit."
)
DEFAULT_INSTRUCTIONS_PART2 = (
    "You will see one image at a time. Rate how well it is coloured, from 1 star (no colour) to 4 stars "
    "(perfect). Answer with your first impression; there is no time limit."
)
STANDARD_INSTRUCTIONS = {
    (1, 2): DEFAULT_INSTRUCTIONS,
    (1,): DEFAULT_INSTRUCTIONS_PART1,
    (2,): DEFAULT_INSTRUCTIONS_PART2,
}
PART_NAMES = {1: "part 1 (real or colorized)", 2: "part 2 (stars)"}


@dataclass
class StudySpec:
    title: str
    methods: list[str]
    trials_part1: int = 5
    trials_part2: int = 5
    instructions: str = DEFAULT_INSTRUCTIONS
    consent_text: str = DEFAULT_CONSENT
    completion_code: str | None = None
    redirect_url: str | None = None
    attention_checks: bool = False
    slug: str | None = None
    open_when_ready: bool = False
    method_params: dict[str, dict] = field(default_factory=dict)


@dataclass(frozen=True)
class Readiness:
    total: int
    ready: int
    queued: int
    running: int
    failed: int
    failures: list[str]  # "photo name / method: error"
    preparing: int = 0  # colorized, display copy not made yet (time budget of this call spent)

    @property
    def complete(self) -> bool:
        return self.ready == self.total

    def message(self) -> str:
        if self.complete:
            return f"all {self.total} stimuli are ready"
        parts = [f"{self.ready} of {self.total} stimuli are ready"]
        if self.queued or self.running:
            parts.append(f"{self.queued} colorization(s) queued and {self.running} running")
        if self.preparing:
            parts.append(f"{self.preparing} colorized and being prepared")
        if self.failed:
            parts.append(f"{self.failed} failed ({'; '.join(self.failures[:3])}): retry them")
        return "; ".join(parts)


def default_instructions(parts: tuple[int, ...]) -> str:
    """The standard instructions for a study of these parts."""
    return STANDARD_INSTRUCTIONS.get(parts, DEFAULT_INSTRUCTIONS)


def slugify(title: str) -> str:
    text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:40].strip("-")
    return f"{text or 'study'}-{secrets.token_hex(3)}"


def _clean_text(value: str | None, name: str, limit: int) -> str:
    text = (value or "").replace("\r\n", "\n").strip()
    if len(text) > limit:
        raise UserError(422, f"{name} is longer than {limit} characters")
    if any(not ch.isprintable() and ch not in "\n\t" for ch in text):
        raise UserError(422, f"{name} contains control characters")
    return text


class CheckedTexts(NamedTuple):
    title: str
    consent_text: str
    instructions: str


def clean_texts(
    title: str | None,
    consent_text: str | None,
    instructions: str | None,
    parts: tuple[int, ...] = (1, 2),
) -> CheckedTexts:
    """The texts participants see, checked against :data:`TEXT_LIMITS`; an empty consent text is the default
    one, empty or standard instructions are the standard ones for the study's ``parts`` (a form prefilled with
    another shape's standard text never tells a one-part study's participants of a part it has not), an empty
    title an error (422)."""
    clean_title = _clean_text(title, "the title", TEXT_LIMITS["title"])
    if not clean_title:
        raise UserError(422, "the study needs a title")
    given = _clean_text(instructions, "the instructions", TEXT_LIMITS["instructions"])
    if not given or given in STANDARD_INSTRUCTIONS.values():
        given = default_instructions(parts)
    return CheckedTexts(
        clean_title,
        _clean_text(consent_text, "the consent text", TEXT_LIMITS["consent_text"]) or DEFAULT_CONSENT,
        given,
    )


def validate_spec(spec: StudySpec, settings: Settings, *, check_available: bool = True) -> StudySpec:
    """Check and normalise a study's settings, or raise :class:`UserError` (422/409). Either part may have 0
    trials (a real-vs-fake survey only, or a rating study only), not both."""
    for part, n in ((1, spec.trials_part1), (2, spec.trials_part2)):
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_TRIALS:
            raise UserError(
                422,
                f"trials in part {part} must be a whole number from 0 to {MAX_TRIALS} "
                "(0 leaves the part out)",
            )
    if spec.trials_part1 == spec.trials_part2 == 0:
        raise UserError(
            422,
            f"a study needs trials in at least one part: {PART_NAMES[1]}, {PART_NAMES[2]}, or both",
        )
    texts = clean_texts(
        spec.title, spec.consent_text, spec.instructions, parts_of(spec.trials_part1, spec.trials_part2)
    )
    methods = [m.strip() for m in spec.methods if m and m.strip()]
    if not methods:
        raise UserError(422, "choose at least one colorization method")
    if len(set(methods)) != len(methods):
        raise UserError(422, "a method is listed twice")
    for name in methods:
        info = method_views.get_method(name)  # "real" and "attention" are conditions, never methods
        if info is None:
            usable = ", ".join(m.name for m in method_views.public_methods() if not m.needs_reference)
            raise UserError(422, f"unknown method {name!r}; a study can use: {usable}")
        if info.needs_reference:
            raise UserError(
                422, f"method {name!r} needs a reference image per photo and cannot be used in a study"
            )
        if check_available:
            method_choice.require_installed(info, settings)
    slug = (spec.slug or "").strip().lower()
    if slug and not SLUG_RE.match(slug):
        raise UserError(
            422, "the address (slug) must be 3-64 characters: lower-case letters, digits and inner hyphens"
        )
    code = _clean_text(spec.completion_code, "the completion code", 100) or None
    redirect = (spec.redirect_url or "").strip() or None
    if redirect:
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(redirect) > 500:
            raise UserError(422, "the redirect URL must be an http(s) address of at most 500 characters")
    return StudySpec(
        title=texts.title,
        methods=methods,
        trials_part1=spec.trials_part1,
        trials_part2=spec.trials_part2,
        instructions=texts.instructions,
        consent_text=texts.consent_text,
        completion_code=code,
        redirect_url=redirect,
        attention_checks=bool(spec.attention_checks),
        slug=slug or None,
        open_when_ready=spec.open_when_ready,
        method_params=spec.method_params,
    )


def build_study(
    session: Session,
    settings: Settings,
    spec: StudySpec,
    photos: list[PhotoFile],
    *,
    check_available: bool = True,
) -> tuple[Study, list[str]]:
    """Store the study, its photos, gray inputs, stimuli and queued jobs (the caller commits, then enqueues
    the returned job ids with :func:`backend.job_lifecycle.enqueue`)."""
    spec = validate_spec(spec, settings, check_available=check_available)
    if not photos:
        raise UserError(422, "upload at least one colour photo")
    need = max(spec.trials_part1, spec.trials_part2)
    if len(photos) < need:
        raise UserError(
            422,
            f"{'1 photo is' if len(photos) == 1 else f'{len(photos)} photos are'} too few: a participant "
            f"sees each photo at most once per part, so {need} trials need at least {need} photos",
        )
    slug = spec.slug or slugify(spec.title)
    if session.scalar(select(func.count()).select_from(Study).where(Study.slug == slug)):
        raise UserError(409, f"the address (slug) {slug!r} is already used by another study")
    params: dict[str, dict] = {}
    for name in spec.methods:
        info = method_choice.known_method(name)
        params[name] = method_choice.checked_params(info, spec.method_params.get(name, {}))
    study = Study(
        slug=slug,
        title=spec.title,
        instructions=spec.instructions,
        consent_text=spec.consent_text,
        methods=spec.methods,
        trials_part1=spec.trials_part1,
        trials_part2=spec.trials_part2,
        completion_code=spec.completion_code,
        redirect_url=spec.redirect_url,
        attention_checks=spec.attention_checks,
        status=StudyStatus.draft,
    )
    session.add(study)
    session.flush()
    job_ids: list[str] = []
    seen: Counter[str] = Counter()
    for position, photo in enumerate(photos):
        decoded = decode_photo(photo, settings)
        real = store_image(session, Upload(data=photo.data, decoded=decoded, filename=photo.name))
        seen[real.id] += 1
        if seen[real.id] > 1:
            raise UserError(422, f"{photo.name} is the same photo as an earlier one")
        gray_bytes = gray_png(decoded)
        gray = store_result(
            session, gray_bytes, decoded.width, decoded.height, is_color=False, filename=photo.name
        )
        row = StudyPhoto(
            study_id=study.id,
            position=position,
            name=display_name(photo.name) or f"photo {position + 1}",
            image_id=real.id,
            gray_image_id=gray.id,
        )
        session.add(row)
        session.flush()
        shown = store_display(session, decoded.rgb, settings.study_image_max_side)
        session.add(
            Stimulus(
                study_id=study.id,
                photo_id=row.id,
                condition=REAL,
                source_image_id=real.id,
                display_image_id=shown.id,
            )
        )
        if spec.attention_checks:
            gray_rgb = np.repeat(lab.lightness_to_gray_uint8(decoded.lightness())[..., None], 3, axis=-1)
            gray_shown = store_display(session, gray_rgb, settings.study_image_max_side)
            session.add(
                Stimulus(
                    study_id=study.id,
                    photo_id=row.id,
                    condition=ATTENTION,
                    source_image_id=gray.id,
                    display_image_id=gray_shown.id,
                )
            )
        for method in spec.methods:
            new = lifecycle.NewJob(method, params[method], image=real, source_name=display_name(photo.name))
            job = lifecycle.create(session, new)
            job_ids.append(job.id)
            session.add(Stimulus(study_id=study.id, photo_id=row.id, condition=method, job_id=job.id))
        session.flush()
    return study, job_ids


def create_study(
    session: Session,
    settings: Settings,
    spec: StudySpec,
    photos: list[PhotoFile],
    *,
    check_available: bool = True,
) -> Study:
    """Build, commit, and send the colorizations to the workers."""
    study, job_ids = build_study(session, settings, spec, photos, check_available=check_available)
    session.commit()
    lifecycle.enqueue(session, job_ids)
    return study


def get_study(session: Session, slug_or_id: str) -> Study | None:
    if not slug_or_id or len(slug_or_id) > 64:
        return None
    return session.scalars(
        select(Study).where((Study.slug == slug_or_id) | (Study.id == slug_or_id)).limit(1)
    ).first()


def find_study(session: Session, slug_or_id: str, *, slug_only: bool = False) -> Study:
    """The study with this slug (or, unless ``slug_only``, this id), or 404. Participants reach a study by
    its slug only; researchers by either."""
    study = get_study(session, slug_or_id)
    if study is None or (slug_only and study.slug != slug_or_id):
        raise UserError(404, f"there is no study {slug_or_id!r}")
    return study


_recent: dict[tuple[str, str], tuple[float, Study]] = {}
_recent_lock = threading.Lock()
STUDY_CACHE_SECONDS = 2.0


def cached_study(session: Session, slug: str, *, fresh: bool = False) -> Study:
    """The study at this participant address (or 404), as read at most STUDY_CACHE_SECONDS ago: one query less
    for each participant request. The researcher's changes in this process are seen at once (:func:`_forget`),
    other web processes see them within that time; a new participant's draw (service.next_seq) checks in the
    same statement that the study is still open. The copy is detached: read it, never change it."""
    key = (str(session.get_bind().engine.url), slug)
    now = time.monotonic()
    hit = _recent.get(key)
    if hit is not None and not fresh and now - hit[0] < STUDY_CACHE_SECONDS:
        return hit[1]
    study = find_study(session, slug, slug_only=True)
    session.expunge(study)
    with _recent_lock:
        if len(_recent) > 1000:
            _recent.clear()
        _recent[key] = (now, study)
    return study


def _forget(study: Study) -> None:
    with _recent_lock:
        for key in [k for k in _recent if k[1] == study.slug]:
            del _recent[key]


def refresh(
    session: Session, settings: Settings, study: Study, *, budget_s: float | None = None
) -> Readiness:
    """Register finished colorizations (a display copy of each result); report how many stimuli are ready.
    With ``budget_s``, stop making display copies after that many seconds (a page view stays quick; the rest
    is done by later calls, and always in full when the study opens)."""
    deadline = None if budget_s is None else time.monotonic() + budget_s
    rows = session.execute(
        select(Stimulus, Job, StudyPhoto.name)
        .join(Job, Job.id == Stimulus.job_id)
        .join(StudyPhoto, StudyPhoto.id == Stimulus.photo_id)
        .where(Stimulus.study_id == study.id)
        .order_by(Stimulus.id)  # two refreshes at once take the rows' locks in one order
    ).all()
    queued = running = failed = preparing = 0
    failures: list[str] = []
    for stimulus, job, photo_name in rows:
        if stimulus.display_image_id is not None:
            continue
        if job.status == JobStatus.done and job.result_image_id and deadline and time.monotonic() > deadline:
            preparing += 1
        elif job.status == JobStatus.done and job.result_image_id:
            result = session.scalars(
                select(Image).where(Image.id == job.result_image_id).options(undefer(Image.data))
            ).one()
            rgb = decode(result.data, max_pixels=max(settings.max_pixels, result.width * result.height)).rgb
            display = store_display(session, rgb, settings.study_image_max_side)
            # Only if no other page view made it meanwhile (the study page's refresh and "Open" may run at
            # once): a second copy would stay unused until the study is deleted.
            made = session.execute(
                update(Stimulus)
                .where(Stimulus.id == stimulus.id, Stimulus.display_image_id.is_(None))
                .values(source_image_id=result.id, display_image_id=display.id)
                .execution_options(synchronize_session=False)
            )
            if rowcount(made) != 1:
                session.delete(display)
            # each copy committed at once: a page view's refresh waits for one copy of "Open"'s, not all
            session.commit()
            session.expire(stimulus)
        elif job.status in (JobStatus.failed, JobStatus.cancelled):
            failed += 1
            failures.append(f"{photo_name} / {stimulus.condition}: {job.error or job.status}")
        elif job.status == JobStatus.running:
            running += 1
        else:
            queued += 1
    total = (
        session.scalar(
            select(func.count())
            .select_from(Stimulus)
            .where(Stimulus.study_id == study.id, Stimulus.condition != ATTENTION)
        )
        or 0
    )
    ready = (
        session.scalar(
            select(func.count())
            .select_from(Stimulus)
            .where(
                Stimulus.study_id == study.id,
                Stimulus.condition != ATTENTION,
                Stimulus.display_image_id.is_not(None),
            )
        )
        or 0
    )
    return Readiness(
        total=total,
        ready=ready,
        queued=queued,
        running=running,
        failed=failed,
        failures=failures,
        preparing=preparing,
    )


def retry_failed(session: Session, study: Study) -> list[str]:
    """Queue a new job for every failed or cancelled colorization of the study; returns the new job ids."""
    rows = session.execute(
        select(Stimulus, Job)
        .join(Job, Job.id == Stimulus.job_id)
        .where(
            Stimulus.study_id == study.id,
            Stimulus.display_image_id.is_(None),
            Job.status.in_([JobStatus.failed, JobStatus.cancelled]),
        )
    ).all()
    new_ids: list[str] = []
    for stimulus, old in rows:
        again = lifecycle.NewJob(
            old.method, old.params or {}, image=old.input_image, source_name=old.source_name
        )
        job = lifecycle.create(session, again)
        stimulus.job_id = job.id
        new_ids.append(job.id)
    session.commit()
    lifecycle.enqueue(session, new_ids)
    return new_ids


def open_study(session: Session, settings: Settings, study: Study) -> Readiness:
    readiness = refresh(session, settings, study)
    if not readiness.complete:
        raise UserError(409, f"the study cannot open yet: {readiness.message()}")
    study.status = StudyStatus.open
    study.opened_at = utcnow()
    study.closed_at = None
    if study.texts_version == 0:  # the texts participants will see are frozen as version 1
        _snapshot_texts(session, study, 1)
    session.commit()
    _forget(study)
    return readiness


def _snapshot_texts(session: Session, study: Study, version: int) -> None:
    study.texts_version = version
    session.add(
        StudyTexts(
            study_id=study.id,
            version=version,
            title=study.title,
            consent_text=study.consent_text,
            instructions=study.instructions,
        )
    )


def edit_texts(session: Session, study: Study, *, title: str, consent_text: str, instructions: str) -> bool:
    """Change the texts participants see. A draft is edited in place; once the study has opened, a change is a
    new version (kept, and recorded for each participant who consents from then on). Returns whether a new
    version was made. Commits."""
    texts = clean_texts(title, consent_text, instructions, study.parts)
    if (study.title, study.consent_text, study.instructions) == texts:
        return False
    study.title, study.consent_text, study.instructions = texts
    versioned = study.texts_version > 0
    if versioned:
        _snapshot_texts(session, study, study.texts_version + 1)
    session.commit()
    _forget(study)
    return versioned


def participant_count(session: Session, study: Study) -> int:
    """The study's participants (previews not counted)."""
    query = select(func.count()).where(Participant.study_id == study.id, Participant.is_preview.is_(False))
    return session.scalar(query) or 0


@dataclass(frozen=True)
class ParticipantCounts:
    """A study's participants as its dashboard counts them (previews never; ``left_out``: excluded or marked
    returned / timed out by the researcher, kept but not counted)."""

    counted: int
    completed: int
    left_out: int


def participant_counts(session: Session) -> dict[str, ParticipantCounts]:
    """Every study's :class:`ParticipantCounts`, by study id (studies without participants are absent)."""
    active = Participant.status == ParticipantStatus.active
    rows = session.execute(
        select(
            Participant.study_id,
            func.count(case((active, 1))),
            func.count(case((and_(active, Participant.completed_at.is_not(None)), 1))),
            func.count(case((~active, 1))),
        )
        .where(Participant.is_preview.is_(False))
        .group_by(Participant.study_id)
    )
    return {sid: ParticipantCounts(n, done, left) for sid, n, done, left in rows}


def deletion_refusal(session: Session, study: Study, *, grace_minutes: float) -> str | None:
    """Why ``study`` cannot be deleted now, or None: not while it is open, nor while someone who was answering
    when it closed may still finish (STUDY_CLOSE_GRACE_MINUTES after closing), as their answers would go."""
    if study.status == StudyStatus.open:
        return f"close the study {study.slug!r} before deleting it: participants may be answering"
    until = study.answers_until(grace_minutes)
    if until is None or utcnow() > until:  # the instant answers_closed starts refusing them
        return None
    answering = session.scalar(
        select(func.count())
        .select_from(Participant)
        .where(
            Participant.study_id == study.id,
            Participant.completed_at.is_(None),
            Participant.status == ParticipantStatus.active,
            Participant.is_preview.is_(False),
        )
    )
    if not answering:
        return None
    return (
        f"{answering} participant(s) were answering when the study closed and may finish until "
        f"{until:%Y-%m-%d %H:%M} UTC (STUDY_CLOSE_GRACE_MINUTES after closing): delete it after that"
    )


def delete_study(session: Session, study: Study, *, grace_minutes: float) -> Freed:
    """Delete a study that is not open, for good: its texts, photos, stimuli, participants and answers, its
    colorization jobs (cancelled first where still queued or running: their worker stops at its next report)
    and every image that no job and no other study uses (an image shared with someone's own job stays).
    Returns what was freed; 409 while :func:`deletion_refusal` says why not."""
    if reason := deletion_refusal(session, study, grace_minutes=grace_minutes):
        raise UserError(409, reason)
    study_id = study.id
    of_study = Stimulus.study_id == study_id
    job_ids = [i for i in session.scalars(select(Stimulus.job_id).where(of_study)) if i is not None]
    photos = select(StudyPhoto.image_id, StudyPhoto.gray_image_id).where(StudyPhoto.study_id == study_id)
    stimuli = select(Stimulus.source_image_id, Stimulus.display_image_id).where(of_study)
    candidates = {
        i for query in (photos, stimuli) for row in session.execute(query) for i in row if i is not None
    }
    for job_id in job_ids:
        lifecycle.cancel(session, job_id)  # commits; a no-op for a finished job
    _forget(study)

    def deletion() -> Freed:
        for table in (Trial, Participant, Stimulus, StudyPhoto, StudyTexts):
            session.execute(delete(table).where(table.study_id == study_id))
        session.execute(delete(Study).where(Study.id == study_id))
        # the jobs' images too, and the study's own, where no one else uses them
        return lifecycle.delete_jobs(session, job_ids) + delete_unused_images(session, candidates)

    return lifecycle.commit_deletion(session, deletion, "delete study")


def close_study(session: Session, study: Study) -> None:
    if study.status != StudyStatus.open:
        raise UserError(409, f"the study is {study.status}, not open")
    study.status = StudyStatus.closed
    study.closed_at = utcnow()
    session.commit()
    _forget(study)
