"""Participants: identity, balanced assignment of stimuli, the state of a session (resume), answering.

Identity: consent issues a random secret; the browser keeps it in a signed cookie and the database keeps only
its hash. A participant is resumed by that cookie, or (another device, a lost cookie) by what only they have:
Prolific's PROLIFIC_PID together with the SESSION_ID Prolific issued for the attempt, or, for anonymous
participants, the same browser. An id alone, or with another SESSION_ID, reveals nothing (403); the researcher
can release a participant (admin page) so that their id binds afresh.

Assignment: each new participant takes the next number of an atomic counter on the study row (committed at
once, so no lock is held while trials are drawn). Per part, trial slots are numbered globally (participant k
has slots k·n … k·n+n−1); slot g shows condition g mod C and the photo g + ⌊g / lcm(P, C)⌋ mod P of a
study-seeded random photo order. So consecutive slots cycle through the conditions and through distinct
photos, every (photo, condition) pair comes once in every P·C slots (each stimulus shown equally often, ±1, at
any moment), a participant sees no photo twice in a part (n ≤ P) and every condition once before any twice.
Attention checks, when enabled, add one trial to each part at a random position after the first: part 1 shows
an obviously gray image (expected answer: colorized), part 2 asks for a given number of stars. A part with 0
trials (a study of one part: real or colorized only, or stars only) gets no trials, no attention check.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import random
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, NamedTuple, cast
from urllib.parse import quote

from sqlalchemy import Table, bindparam, delete, func, insert, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from backend.db import DriverStatement
from backend.errors import UserError
from backend.models import new_id, random_string, utcnow
from backend.study.display_images import DISPLAY_IMAGES
from backend.study.models import (
    ATTENTION,
    Participant,
    ParticipantStatus,
    Stimulus,
    Study,
    StudyStatus,
    Trial,
)

ID_RE = re.compile(r"[A-Za-z0-9_.:@+-]{1,128}\Z")  # \Z: "$" lets a final newline through
RATING_LABELS = {
    1: "No colour",
    2: "Some parts coloured",
    3: "Fully coloured, but not saturated",
    4: "Perfect",
}
RESPONSES = ("real", "fake")
MAX_RESPONSE_MS = 3_600_000


LOCKED = (
    "this participant id has already started this study in another session. If it is yours, open the study "
    "from the link you were given (it carries your session), or contact the researcher, who can let you "
    "continue on this device."
)
# A `?participant=ID` participant's link carries no session: only the browser they started in knows them.
LOCKED_TO_BROWSER = (
    "this participant id has already started this study in another browser. If it is yours, continue in "
    "that browser, or contact the researcher, who can let you continue on this device."
)
NOT_OPEN = "this study is not accepting participants at the moment"
RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud and typed by people
PROLIFIC_COMPLETE = "https://app.prolific.com/submissions/complete?cc="

# The hot path's statements are written on the tables, not the ORM entities: an ORM-enabled statement costs
# about twice the CPU of the same statement on the table (benchmarks/RESULTS.md, "User study").
_STUDIES = cast(Table, Study.__table__)
_PARTICIPANTS = cast(Table, Participant.__table__)
_TRIALS = cast(Table, Trial.__table__)
_STIMULI = cast(Table, Stimulus.__table__)


@dataclass(frozen=True)
class Identity:
    external_id: str | None
    source: str  # prolific | url | anonymous
    prolific_study_id: str | None = None
    prolific_session_id: str | None = None


def _check_id(value: str | None, name: str) -> str | None:
    if value is None or value == "":
        return None
    if not ID_RE.match(value):
        raise UserError(422, f"{name} must be 1-128 letters, digits or _ . : @ + -")
    return value


def identity_from(params: dict[str, Any]) -> Identity:
    """Participant identity from the link's query (Prolific's PROLIFIC_PID/STUDY_ID/SESSION_ID, or
    `participant`); anonymous when neither is present."""
    pid = _check_id(params.get("PROLIFIC_PID"), "PROLIFIC_PID")
    study_id = _check_id(params.get("STUDY_ID"), "STUDY_ID")
    session_id = _check_id(params.get("SESSION_ID"), "SESSION_ID")
    if pid:
        return Identity(pid, "prolific", study_id, session_id)
    other = _check_id(params.get("participant"), "participant")
    if other:
        return Identity(other, "url", study_id, session_id)
    return Identity(None, "anonymous")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> tuple[str, str]:
    """A session secret (for the cookie) and its hash (for the database)."""
    secret = secrets.token_urlsafe(24)
    return secret, hash_secret(secret)


def issue_secret(participant: Participant) -> str:
    """A fresh session secret for this participant (the previous one stops working). The caller commits."""
    secret, participant.secret_hash = new_secret()
    return secret


def secret_matches(participant: Participant, secret: str | None) -> bool:
    return bool(
        secret
        and participant.secret_hash
        and hmac.compare_digest(participant.secret_hash, hash_secret(secret))
    )


@dataclass(frozen=True)
class Found:
    participant: Participant
    by_cookie: bool  # False: proven by the Prolific pair / the browser, a new cookie must be issued


def resolve(
    session: Session,
    study: Study,
    identity: Identity,
    cookie: tuple[str, str] | None,
    browser: str | None = None,
) -> Found | None:
    """Who this is: the cookie's participant (when the link names no one else), else the participant the
    link's id names, if the request proves it (see the module docstring), else the anonymous participant of
    this browser. None: someone new. Raises 403 (LOCKED) for an id that is taken by another session."""
    known = cookie_owner(session, study, cookie)
    if known is not None and identity.external_id in (None, known.external_id):
        return Found(known, True)
    if identity.external_id:
        named = _attached(session, _NAMED, {"sid": study.id, "external_id": identity.external_id})
        if named is None:
            return None
        released = named.secret_hash is None and named.prolific_session_id is None
        same_attempt = bool(
            identity.prolific_session_id
            and named.prolific_session_id
            and hmac.compare_digest(named.prolific_session_id.encode(), identity.prolific_session_id.encode())
        )
        if released or same_attempt:
            return Found(named, False)
        raise UserError(403, LOCKED if named.prolific_session_id else LOCKED_TO_BROWSER)
    if browser:
        mine = _attached(session, _OF_BROWSER, {"sid": study.id, "browser": browser})
        if mine is not None:
            return Found(mine, False)
    return None


def cookie_owner(session: Session, study: Study, cookie: tuple[str, str] | None) -> Participant | None:
    """The participant of this study whose session secret the cookie carries, if any."""
    if cookie is None:
        return None
    participant = participant_by_id(session, cookie[0])
    if participant is None or participant.study_id != study.id or not secret_matches(participant, cookie[1]):
        return None
    return participant


def participant_by_id(session: Session, participant_id: str) -> Participant | None:
    return _attached(session, _BY_ID, {"pid": participant_id})


def _attached(session: Session, stmt: DriverStatement, params: dict[str, Any]) -> Participant | None:
    """The participant the statement (on the table, all columns) finds, in the session as if loaded by it:
    a fraction of the CPU of the ORM's loading (``Session.get``), which every participant request paid."""
    row = stmt.first(session, params)
    if row is None:
        return None
    columns = dict(zip(stmt.columns, row, strict=True))
    present = session.identity_map.get(identity_key(Participant, columns["id"]))
    if present is not None:
        return present
    return _attach_as_loaded(session, Participant(**columns))


def _attach_as_loaded(session: Session, participant: Participant) -> Participant:
    """Put a participant built with every column's value into the session as if loaded from the database:
    reading it sends no SQL, and a change to it is written by the next commit."""
    make_transient_to_detached(participant)
    session.add(participant)
    return participant


_BY_ID = DriverStatement(select(_PARTICIPANTS).where(_PARTICIPANTS.c.id == bindparam("pid")))
_NAMED = DriverStatement(
    select(_PARTICIPANTS)
    .where(
        _PARTICIPANTS.c.study_id == bindparam("sid"),
        _PARTICIPANTS.c.external_id == bindparam("external_id"),
    )
    .limit(1)
)
_OF_BROWSER = DriverStatement(
    select(_PARTICIPANTS)
    .where(
        _PARTICIPANTS.c.study_id == bindparam("sid"),
        _PARTICIPANTS.c.browser == bindparam("browser"),
        _PARTICIPANTS.c.source == "anonymous",
        _PARTICIPANTS.c.is_preview.is_(False),
    )
    .order_by(_PARTICIPANTS.c.consented_at)
    .limit(1)
)


@dataclass(frozen=True)
class Started:
    participant: Participant
    secret: str  # for the cookie


def _receipt() -> str:
    return random_string(RECEIPT_ALPHABET, 8)


def resume(session: Session, found: Found, identity: Identity) -> Started:
    """Continue a proven participant's session on this device: a fresh secret (and, for a released id, the
    new Prolific attempt it is bound to from now on). Commits."""
    participant = found.participant
    if participant.prolific_session_id is None and identity.prolific_session_id:
        participant.prolific_session_id = identity.prolific_session_id
    secret = issue_secret(participant)
    session.commit()
    return Started(participant, secret)


def next_seq(session: Session, study: Study) -> int:
    """The next number of the study's participant counter, committed at once (the row lock lasts only for this
    statement, so concurrent participants never wait for each other's draws). The same statement checks that
    the study is open, so a caller may hold a copy of the study read moments ago (409 if it closed since)."""
    seq = _NEXT_SEQ.scalar(session, {"sid": study.id})
    session.commit()
    if seq is None:
        raise UserError(409, NOT_OPEN)
    return int(seq) - 1


_NEXT_SEQ = DriverStatement(
    update(_STUDIES)
    .where(_STUDIES.c.id == bindparam("sid"), _STUDIES.c.status == StudyStatus.open.value)
    .values(participant_seq=_STUDIES.c.participant_seq + 1)
    .returning(_STUDIES.c.participant_seq)
)


def start(
    session: Session,
    study: Study,
    identity: Identity,
    found: Found | None = None,
    *,
    user_agent: str | None = None,
    browser: str | None = None,
    preview: bool = False,
    rng: random.Random | None = None,
) -> Started:
    """Consent given: resume a proven participant (see :func:`resolve`), or create one with its trials.
    New participants need an open study (409), except the researcher's preview, which works in a draft too."""
    if found is not None:
        return resume(session, found, identity)
    if study.status != StudyStatus.open and not preview:
        raise UserError(409, NOT_OPEN)
    rng = rng or random.Random()  # seeded from the OS; the order of trials is no secret
    seq = None if preview else next_seq(session, study)
    secret, secret_hash = new_secret()
    columns: dict[str, Any] = {
        "id": new_id(),
        "study_id": study.id,
        "external_id": identity.external_id or f"{'preview' if preview else 'anon'}-{new_id()}",
        "source": "preview" if preview else identity.source,
        "prolific_study_id": identity.prolific_study_id,
        "prolific_session_id": identity.prolific_session_id,
        "user_agent": (user_agent or "")[:300] or None,
        "consented_at": utcnow(),
        "started_at": None,
        "completed_at": None,
        "extra": None,
        "secret_hash": secret_hash,
        "browser": browser if identity.source == "anonymous" and not preview else None,
        "receipt": _receipt(),
        "status": ParticipantStatus.active.value,
        "is_preview": preview,
        "texts_version": study.texts_version,
        "seq": seq,
    }
    participant = Participant(**columns)
    trials = draw_trials(study, participant, rng, design(session, study))
    try:
        # On the tables (the ORM's unit of work cost as much as the rest of a start); the entity joins the
        # session afterwards as if loaded, every column set, so reading it never goes back to the database.
        _insert_participant(session, columns, trials)
        session.commit()
    except IntegrityError:  # the same id (or browser) started twice at once: the one that won must be proven
        session.rollback()
        again = resolve(session, study, identity, None, browser=browser)
        if again is None:
            raise
        return resume(session, again, identity)
    return Started(_attach_as_loaded(session, participant), secret)


class StimRef(NamedTuple):
    id: str
    photo_id: str
    condition: str


@dataclass(frozen=True)
class Design:
    """A study's stimuli as every draw reads them: per part, the study-seeded order of the photos, and the
    conditions that have stimuli (worked out once per study and process, not once per participant)."""

    refs: list[StimRef]
    by_key: dict[tuple[str, str], StimRef]  # (photo, condition) -> stimulus, attention checks apart
    attention: dict[str, StimRef]  # photo -> its attention-check stimulus
    photos: dict[int, list[str]]  # part -> photo order
    conditions: list[str]

    @classmethod
    def of(cls, study: Study, refs: list[StimRef]) -> Design:
        by_key = {(r.photo_id, r.condition): r for r in refs if r.condition != ATTENTION}
        ordered = sorted({photo for photo, _ in by_key})
        photos = {part: ordered.copy() for part in (1, 2)}
        for part, order in photos.items():
            random.Random(f"{study.id}:{part}").shuffle(order)
        conditions = [c for c in study.conditions if any((p, c) in by_key for p in ordered)]
        attention = {r.photo_id: r for r in refs if r.condition == ATTENTION}
        return cls(refs, by_key, attention, photos, conditions)


_designs: dict[tuple[str, str], Design] = {}


def design(session: Session, study: Study) -> Design:
    """The study's design. Stimuli are only ever created with the study (builder.build_study), so one with
    stimuli is kept per process: one query less for every participant who starts."""
    key = (str(session.get_bind().engine.url), study.id)
    cached = _designs.get(key)
    if cached is not None:
        return cached
    stmt = select(Stimulus.id, Stimulus.photo_id, Stimulus.condition).where(Stimulus.study_id == study.id)
    made = Design.of(study, [StimRef(*row) for row in session.execute(stmt)])
    if made.refs:
        if len(_designs) > 1000:
            _designs.clear()
        _designs[key] = made
    return made


def block(plan: Design, part: int, seq: int, n: int) -> list[StimRef]:
    """The n stimuli of participant number ``seq`` in one part of the balanced design (module docstring)."""
    photos, conditions, by_key = plan.photos[part], plan.conditions, plan.by_key
    n_photos, n_conditions = len(photos), len(conditions)
    cycle = math.lcm(n_photos, n_conditions)
    picks: list[StimRef] = []
    used: set[str] = set()
    for j in range(n):
        slot = seq * n + j
        # The photo advances by one per slot, and by one more after each lcm(P, C) slots, so that every
        # (photo, condition) pair comes once in every P·C consecutive slots.
        x = (slot + slot // cycle) % n_photos
        while photos[x] in used:  # only where a block straddles that extra step and n equals P
            x = (x + 1) % n_photos
        photo = photos[x]
        ref = by_key.get((photo, conditions[slot % n_conditions]))
        if ref is None:  # a condition missing for this photo (not built): any stimulus of the photo
            ref = next(r for (p, _), r in by_key.items() if p == photo)
        picks.append(ref)
        used.add(photo)
    return picks


def _insert_participant(session: Session, participant: dict[str, Any], trials: list[dict[str, Any]]) -> None:
    """Insert a participant and its trials together. On PostgreSQL in one statement (the participant in a
    data-modifying WITH, the trials from arrays): atomic by itself, so a start needs no transaction around it
    (``db.statement_scope``), and its few parameters let psycopg and PostgreSQL prepare it once."""
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(_PARTICIPANTS), [participant])
        session.execute(insert(_TRIALS), trials)
        return
    params = {f"p_{key}": value for key, value in participant.items()}
    params.update({f"t_{key}": [row[key] for row in trials] for key, _ in _TRIAL_ARRAYS})
    _participant_with_trials(tuple(participant)).rowcount(session, params)


# The per-trial columns of a start, with their PostgreSQL array types (study and participant are the same for
# every trial of the statement).
_TRIAL_ARRAYS = (
    ("id", "varchar[]"),
    ("part", "smallint[]"),
    ("position", "smallint[]"),
    ("stimulus_id", "varchar[]"),
    ("photo_id", "varchar[]"),
    ("condition", "varchar[]"),
    ("is_attention", "boolean[]"),
    ("expected", "varchar[]"),
)


@lru_cache(maxsize=8)  # per set of participant columns: in practice one
def _participant_with_trials(participant_keys: tuple[str, ...]) -> DriverStatement:
    """PostgreSQL's one-statement start (see :func:`_insert_participant`)."""
    columns = ", ".join(key for key, _ in _TRIAL_ARRAYS)
    arrays = ", ".join(f"CAST(:t_{key} AS {kind})" for key, kind in _TRIAL_ARRAYS)
    return DriverStatement(
        text(
            f"WITH new_participant AS (INSERT INTO {_PARTICIPANTS.name} ({', '.join(participant_keys)}) "
            f"VALUES ({', '.join(f':p_{key}' for key in participant_keys)})) "
            f"INSERT INTO {_TRIALS.name} (study_id, participant_id, {columns}) "
            f"SELECT :p_study_id, :p_id, {columns} FROM unnest({arrays}) AS trial({columns})"
        )
    )


def draw_trials(
    study: Study, participant: Participant, rng: random.Random, plan: Design
) -> list[dict[str, Any]]:
    """The participant's trials (rows of study_trials) for each part the study has, from their block of the
    design (a random block for a preview)."""
    attention = plan.attention
    rows: list[dict[str, Any]] = []
    seq = participant.seq if participant.seq is not None else rng.randrange(len(plan.refs) + 1)
    for part, n in ((1, study.trials_part1), (2, study.trials_part2)):
        if n == 0:  # a part the study leaves out: no trials, so no attention check either
            continue
        picks = block(plan, part, seq, n)
        used = {s.photo_id for s in picks}
        rng.shuffle(picks)
        slots: list[tuple[StimRef, bool, str | None]] = [(s, False, None) for s in picks]
        if study.attention_checks and attention:
            unused = [p for p in attention if p not in used] or list(attention)
            stim = attention[rng.choice(sorted(unused))]
            answer = "fake" if part == 1 else str(rng.choice((2, 3, 4)))
            slots.insert(rng.randint(1, len(slots)), (stim, True, answer))
        for position, (stim, is_attention, expected) in enumerate(slots):
            rows.append(
                {
                    "id": new_id(),
                    "study_id": study.id,
                    "participant_id": participant.id,
                    "part": part,
                    "position": position,
                    "stimulus_id": stim.id,
                    "photo_id": stim.photo_id,
                    "condition": stim.condition,
                    "is_attention": is_attention,
                    "expected": expected,
                }
            )
    return rows


# The hot path's statements, built once (SQL construction costs more CPU than the database round trip here).
_TRIALS_OF_SELECT = (
    select(
        _TRIALS.c.id,
        _TRIALS.c.part,
        _TRIALS.c.position,
        _TRIALS.c.is_attention,
        _TRIALS.c.expected,
        _TRIALS.c.shown_at,
        _TRIALS.c.answered_at,
        _STIMULI.c.display_image_id,
    )
    .join_from(_TRIALS, _STIMULI, _STIMULI.c.id == _TRIALS.c.stimulus_id)
    .where(_TRIALS.c.participant_id == bindparam("pid"))
    .order_by(_TRIALS.c.part, _TRIALS.c.position)
)
_TRIALS_OF = DriverStatement(_TRIALS_OF_SELECT)
_MARK_SHOWN = DriverStatement(
    update(_TRIALS)
    .where(_TRIALS.c.id == bindparam("tid"), _TRIALS.c.shown_at.is_(None))
    .values(shown_at=bindparam("now"))
)
_STORE_ANSWER = DriverStatement(
    update(_TRIALS)
    .where(_TRIALS.c.id == bindparam("tid"), _TRIALS.c.answered_at.is_(None))
    .values(
        answered_at=bindparam("now"),
        shown_at=func.coalesce(_TRIALS.c.shown_at, bindparam("now")),
        response=bindparam("p_response"),
        rating=bindparam("p_rating"),
        response_ms=bindparam("p_ms"),
    )
)
_COMPLETE = DriverStatement(
    update(_PARTICIPANTS)
    .where(_PARTICIPANTS.c.id == bindparam("pid"), _PARTICIPANTS.c.completed_at.is_(None))
    .values(completed_at=bindparam("now"))
)
_BEGIN_UPDATE = (
    update(_PARTICIPANTS)
    .where(_PARTICIPANTS.c.id == bindparam("pid"), _PARTICIPANTS.c.started_at.is_(None))
    .values(started_at=bindparam("now"))
)
_BEGIN = DriverStatement(_BEGIN_UPDATE)


# The participant's start, their first trial marked shown and the read of their trials in one statement
# (data-modifying WITHs, PostgreSQL; the read sees the rows as they were before the statement).
_FIRST_UNANSWERED = (
    select(_TRIALS.c.id)
    .where(_TRIALS.c.participant_id == bindparam("pid"), _TRIALS.c.answered_at.is_(None))
    .order_by(_TRIALS.c.part, _TRIALS.c.position)
    .limit(1)
    .scalar_subquery()
)
_SHOW_FIRST = (
    update(_TRIALS)
    .where(_TRIALS.c.id == _FIRST_UNANSWERED, _TRIALS.c.shown_at.is_(None))
    .values(shown_at=bindparam("now"))
)
_BEGIN_AND_TRIALS = DriverStatement(
    _TRIALS_OF_SELECT.add_cte(_BEGIN_UPDATE.cte("started")).add_cte(_SHOW_FIRST.cte("shown"))
)


@dataclass(slots=True)
class TrialView:
    """The columns of a trial that the participant flow needs (plain data: cheaper than ORM objects)."""

    id: str
    part: int
    position: int
    is_attention: bool
    expected: str | None
    shown_at: datetime | None
    answered_at: datetime | None
    display_image_id: str | None


def trials_of(session: Session, participant: Participant) -> list[TrialView]:
    return [TrialView(*row) for row in _TRIALS_OF.rows(session, {"pid": participant.id})]


def begin(session: Session, participant: Participant) -> list[TrialView] | None:
    """Instructions read: the trials start. Returns the participant's trials where it read them on the way
    (PostgreSQL: the start, the first trial marked shown and the read are one statement), else None. The
    caller commits (with the first trial marked shown)."""
    if participant.started_at is not None:
        return None
    now = utcnow()
    params = {"pid": participant.id, "now": now}
    trials = None
    if session.get_bind().dialect.name == "postgresql":
        trials = [TrialView(*row) for row in _BEGIN_AND_TRIALS.rows(session, params)]
        first = current(trials)
        if first is not None and first.shown_at is None:
            first.shown_at = now  # set by the same statement, whose read saw the row before it
    else:
        _BEGIN.rowcount(session, params)
    # Reflect the stored value without another SELECT (a racing request's time is as good as ours).
    set_committed_value(participant, "started_at", now)
    return trials


def current(trials: list[TrialView]) -> TrialView | None:
    return next((t for t in trials if t.answered_at is None), None)


def mark_shown(session: Session, trial: TrialView) -> None:
    if trial.shown_at is None:
        now = utcnow()
        _MARK_SHOWN.rowcount(session, {"tid": trial.id, "now": now})
        trial.shown_at = now


def state(
    session: Session,
    study: Study,
    participant: Participant | None,
    trials: list[TrialView] | None = None,
    *,
    grace_minutes: float,
) -> dict[str, Any]:
    """Where this participant is: consent, instructions, part1, part2, done (with the current trial) or
    closed (once :func:`answers_closed`: no image is shown that could not be answered). Marks the current
    trial as shown (the caller commits)."""
    base: dict[str, Any] = {
        "study": study.slug,
        "title": study.title,
        "preview": bool(participant is not None and participant.is_preview),
    }
    if participant is None:
        return {**base, "phase": "consent" if study.status == StudyStatus.open else "closed"}
    if participant.completed_at is not None:
        return {**base, "phase": "done", **finish_info(study, participant)}
    if answers_closed(study, participant, grace_minutes):
        return {**base, "phase": "closed"}
    if participant.started_at is None:
        return {**base, "phase": "instructions"}
    trials = trials if trials is not None else trials_of(session, participant)
    trial = current(trials)
    if trial is None:
        return {**base, "phase": "done", **finish_info(study, participant)}
    mark_shown(session, trial)
    in_part = [t for t in trials if t.part == trial.part]
    out: dict[str, Any] = {
        **base,
        "phase": f"part{trial.part}",
        "trial": {
            "id": trial.id,
            "part": trial.part,
            "index": trial.position + 1,
            "total": len(in_part),
            "image_url": f"/study/{study.slug}/images/{trial.id}.jpg",
            "image": (
                None
                if trial.display_image_id is None
                else DISPLAY_IMAGES.data_url(session, trial.display_image_id)
            ),
            "instruction": (
                f"Attention check: please choose {trial.expected} stars for this image."
                if trial.is_attention and trial.part == 2
                else None
            ),
        },
        "progress": {"answered": sum(1 for t in trials if t.answered_at), "total": len(trials)},
    }
    return out


def finish_info(study: Study, participant: Participant) -> dict[str, Any]:
    """What the last page shows, every time it is reloaded: the study's code (Prolific takes one code per
    study) or, without one, the participant's own; the participant's receipt (in the export, to check claims);
    the redirect, or Prolific's completion link for participants who came from Prolific."""
    code = study.completion_code or participant.receipt
    return_url = None
    if participant.source == "prolific" and study.completion_code:
        return_url = PROLIFIC_COMPLETE + quote(study.completion_code, safe="")
    return {
        "completion_code": code,
        "receipt": participant.receipt,
        "redirect_url": study.redirect_url,
        "return_url": return_url,
    }


def answers_closed(
    study: Study, participant: Participant, grace_minutes: float, now: datetime | None = None
) -> bool:
    """Whether the study stopped taking this participant's answers: CLOSED plus the grace period
    (STUDY_CLOSE_GRACE_MINUTES) has passed. A researcher's preview is never refused."""
    until = study.answers_until(grace_minutes)
    if participant.is_preview or until is None:
        return False
    return (now or utcnow()) > until


@dataclass(frozen=True)
class Answer:
    response: str | None = None
    rating: int | None = None
    response_ms: int | None = None


def answer(
    session: Session,
    study: Study,
    participant: Participant,
    trial_id: str,
    given: Answer,
    *,
    grace_minutes: float = 60.0,
) -> tuple[dict[str, Any], bool]:
    """Store one answer the moment it is given. Idempotent: a repeated submission of an answered trial
    changes nothing and returns the current state with ``duplicate`` True. A preview participant is deleted
    with its trials once done (a preview records nothing). Commits."""
    trials = trials_of(session, participant)
    trial = next((t for t in trials if t.id == trial_id), None)
    if trial is None:
        raise UserError(404, "no such trial in your session")
    if trial.answered_at is not None:
        out = state(session, study, participant, trials, grace_minutes=grace_minutes)
        session.commit()
        return out, True
    if participant.started_at is None:
        raise UserError(409, "read the instructions first")
    if answers_closed(study, participant, grace_minutes):
        raise UserError(409, "this study has closed and no longer accepts answers. Thank you for your time.")
    if current(trials) is not trial:
        raise UserError(409, "answer the image on your screen first")
    if trial.part == 1 and (given.response not in RESPONSES or given.rating is not None):
        raise UserError(422, 'part 1 answers are `response`: "real" or "fake"')
    if trial.part == 2 and (given.rating not in RATING_LABELS or given.response is not None):
        raise UserError(422, "part 2 answers are `rating`: 1, 2, 3 or 4 stars")
    if given.response_ms is not None and not 0 <= given.response_ms <= MAX_RESPONSE_MS:
        raise UserError(422, f"response_ms must be between 0 and {MAX_RESPONSE_MS}")
    now = utcnow()
    stored = _STORE_ANSWER.rowcount(
        session,
        {
            "tid": trial.id,
            "now": now,
            "p_response": given.response,
            "p_rating": given.rating,
            "p_ms": given.response_ms,
        },
    )
    if stored == 0:  # the same answer raced in from another request
        session.rollback()
        out = state(session, study, participant, grace_minutes=grace_minutes)
        session.commit()
        return out, True
    trial.answered_at = now
    if current(trials) is None:
        _COMPLETE.rowcount(session, {"pid": participant.id, "now": now})
        set_committed_value(participant, "completed_at", now)
    out = state(session, study, participant, trials, grace_minutes=grace_minutes)
    if participant.is_preview and participant.completed_at is not None:
        session.execute(delete(Trial).where(Trial.participant_id == participant.id))
        session.execute(delete(Participant).where(Participant.id == participant.id))
    session.commit()
    return out, False
