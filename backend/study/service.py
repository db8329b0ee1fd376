"""Participants: identity, balanced assignment of stimuli, the state of a session (resume), answering.

Assignment (issue 5 §3): for each trial of a part, the condition (real or a method) is the one shown least
often so far in that part of the study (ties broken at random) among the conditions this participant has not
had yet in that part (all of them once every condition has been shown to them), then the photo is the
least-shown stimulus of that condition among the photos this participant has not seen in that part (ties at
random). The study row is locked while a participant's trials are drawn (PostgreSQL: SELECT ... FOR UPDATE),
so concurrent participants see each other's counts. Attention checks, when enabled, add one trial to each part
at a random position after the first: part 1 shows an obviously gray image (expected answer: colorized),
part 2 asks for a given number of stars.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from backend.models import new_id, utcnow
from backend.study.errors import StudyError
from backend.study.models import ATTENTION, Participant, Stimulus, Study, StudyStatus, Trial

ID_RE = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")
RATING_LABELS = {
    1: "No color",
    2: "Some parts colored",
    3: "Fully colored, but not saturated",
    4: "Perfect",
}
RESPONSES = ("real", "fake")
MAX_RESPONSE_MS = 3_600_000


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
        raise StudyError(422, f"{name} must be 1-128 letters, digits or _ . : @ + -")
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


def find_participant(
    session: Session, study: Study, identity: Identity, cookie_pid: str | None
) -> Participant | None:
    if identity.external_id:
        return session.scalars(
            select(Participant).where(
                Participant.study_id == study.id, Participant.external_id == identity.external_id
            )
        ).first()
    if cookie_pid:
        found = session.get(Participant, cookie_pid)
        if found is not None and found.study_id == study.id:
            return found
    return None


def start(
    session: Session,
    study: Study,
    identity: Identity,
    cookie_pid: str | None,
    *,
    user_agent: str | None = None,
    rng: random.Random | None = None,
) -> Participant:
    """Consent given: resume this participant's session, or create it with its trials. Refuses a participant
    who already completed the study (409) and new participants of a study that is not open (409)."""
    existing = find_participant(session, study, identity, cookie_pid)
    if existing is not None:
        if existing.completed_at is not None:
            raise StudyError(409, "you have already taken part in this study: thank you!")
        return existing
    if study.status != StudyStatus.open:
        raise StudyError(409, "this study is not accepting participants at the moment")
    participant = Participant(
        id=new_id(),
        study_id=study.id,
        external_id=identity.external_id or f"anon-{new_id()}",
        source=identity.source,
        prolific_study_id=identity.prolific_study_id,
        prolific_session_id=identity.prolific_session_id,
        user_agent=(user_agent or "")[:300] or None,
        consented_at=utcnow(),
    )
    refs = stimulus_refs(
        session, study
    )  # read before taking the lock: the stimuli of an open study are fixed
    try:
        # Serialise the draws of one study's participants so that each sees the others' counts. NO KEY UPDATE
        # (not FOR UPDATE): the rows inserted below take KEY SHARE locks on the study row, which must not
        # conflict with the lock that another participant's transaction is waiting for (deadlock).
        session.execute(select(Study.id).where(Study.id == study.id).with_for_update(key_share=True))
        session.add(participant)
        session.flush()
        assign(session, study, participant, rng or random.SystemRandom(), refs)
        session.commit()
    except IntegrityError:  # the same id started twice at once: use the one that won
        session.rollback()
        again = find_participant(session, study, identity, None)
        if again is None:
            raise
        if again.completed_at is not None:
            raise StudyError(409, "you have already taken part in this study: thank you!") from None
        return again
    return participant


def _pick(rng: random.Random, options: list[str], counts: Counter[str]) -> str:
    least = min(counts[o] for o in options)
    return rng.choice([o for o in options if counts[o] == least])


class StimRef(NamedTuple):
    id: str
    photo_id: str
    condition: str


def stimulus_refs(session: Session, study: Study) -> list[StimRef]:
    stmt = select(Stimulus.id, Stimulus.photo_id, Stimulus.condition).where(Stimulus.study_id == study.id)
    return [StimRef(*row) for row in session.execute(stmt)]


def assign(
    session: Session,
    study: Study,
    participant: Participant,
    rng: random.Random,
    refs: list[StimRef] | None = None,
) -> list[dict[str, Any]]:
    """Draw the participant's trials for both parts (see the module docstring); insert them in one statement.
    The caller holds the study row lock and commits."""
    by_condition: dict[str, dict[str, StimRef]] = {}
    for stim in refs if refs is not None else stimulus_refs(session, study):
        by_condition.setdefault(stim.condition, {})[stim.photo_id] = stim
    conditions = [c for c in study.conditions if by_condition.get(c)]
    cond_counts = {1: Counter({c: 0 for c in conditions}), 2: Counter({c: 0 for c in conditions})}
    stim_counts: dict[int, Counter[str]] = {1: Counter(), 2: Counter()}
    for part, cond, stim_id, count in session.execute(
        select(Trial.part, Trial.condition, Trial.stimulus_id, func.count())
        .where(Trial.study_id == study.id, Trial.is_attention.is_(False))
        .group_by(Trial.part, Trial.condition, Trial.stimulus_id)
    ):
        cond_counts[part][cond] += count
        stim_counts[part][stim_id] += count
    rows: list[dict[str, Any]] = []
    for part, n in ((1, study.trials_part1), (2, study.trials_part2)):
        used: set[str] = set()
        picks: list[StimRef] = []
        for _ in range(n):
            had = {p.condition for p in picks}
            fresh = [c for c in conditions if c not in had]
            cond = _pick(rng, fresh or conditions, cond_counts[part])
            pool = {s.id: s for photo, s in by_condition[cond].items() if photo not in used}
            if not pool:  # every photo already used by this participant in this part under this condition
                cond_options = [c for c in conditions if any(p not in used for p in by_condition[c])]
                cond = _pick(rng, cond_options, cond_counts[part])
                pool = {s.id: s for photo, s in by_condition[cond].items() if photo not in used}
            stim = pool[_pick(rng, sorted(pool), stim_counts[part])]
            cond_counts[part][cond] += 1
            stim_counts[part][stim.id] += 1
            used.add(stim.photo_id)
            picks.append(stim)
        rng.shuffle(picks)
        slots: list[tuple[StimRef, bool, str | None]] = [(s, False, None) for s in picks]
        attention = by_condition.get(ATTENTION)
        if study.attention_checks and attention:
            unused = [p for p in attention if p not in used] or list(attention)
            stim = attention[rng.choice(sorted(unused))]
            expected = "fake" if part == 1 else str(rng.choice((2, 3, 4)))
            slots.insert(rng.randint(1, len(slots)), (stim, True, expected))
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
    session.execute(insert(Trial), rows)
    return rows


# The hot path's statements, built once (SQL construction costs more CPU than the database round trip here).
_NO_SYNC = {"synchronize_session": False}
_TRIALS_OF = (
    select(
        Trial.id,
        Trial.part,
        Trial.position,
        Trial.is_attention,
        Trial.expected,
        Trial.shown_at,
        Trial.answered_at,
    )
    .where(Trial.participant_id == bindparam("pid"))
    .order_by(Trial.part, Trial.position)
)
_MARK_SHOWN = (
    update(Trial)
    .where(Trial.id == bindparam("tid"), Trial.shown_at.is_(None))
    .values(shown_at=bindparam("now"))
    .execution_options(**_NO_SYNC)
)
_STORE_ANSWER = (
    update(Trial)
    .where(Trial.id == bindparam("tid"), Trial.answered_at.is_(None))
    .values(
        answered_at=bindparam("now"),
        shown_at=func.coalesce(Trial.shown_at, bindparam("now")),
        response=bindparam("p_response"),
        rating=bindparam("p_rating"),
        response_ms=bindparam("p_ms"),
    )
    .execution_options(**_NO_SYNC)
)
_COMPLETE = (
    update(Participant)
    .where(Participant.id == bindparam("pid"), Participant.completed_at.is_(None))
    .values(completed_at=bindparam("now"))
    .execution_options(**_NO_SYNC)
)
_BEGIN = (
    update(Participant)
    .where(Participant.id == bindparam("pid"), Participant.started_at.is_(None))
    .values(started_at=bindparam("now"))
    .execution_options(**_NO_SYNC)
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


def trials_of(session: Session, participant: Participant) -> list[TrialView]:
    return [TrialView(*row) for row in session.execute(_TRIALS_OF, {"pid": participant.id})]


def begin(session: Session, participant: Participant) -> None:
    """Instructions read: the trials start."""
    if participant.started_at is None:
        session.execute(_BEGIN, {"pid": participant.id, "now": utcnow()})
        session.commit()
        # Reflect the stored value without another SELECT (a racing request's time is as good as ours).
        set_committed_value(participant, "started_at", participant.started_at or utcnow())


def current(trials: list[TrialView]) -> TrialView | None:
    return next((t for t in trials if t.answered_at is None), None)


def mark_shown(session: Session, trial: TrialView) -> None:
    if trial.shown_at is None:
        now = utcnow()
        session.execute(_MARK_SHOWN, {"tid": trial.id, "now": now})
        trial.shown_at = now


def state(
    session: Session, study: Study, participant: Participant | None, trials: list[TrialView] | None = None
) -> dict[str, Any]:
    """Where this participant is: consent, instructions, part1, part2 or done (with the current trial).
    Marks the current trial as shown (the caller commits)."""
    base: dict[str, Any] = {"study": study.slug, "title": study.title}
    if participant is None:
        return {**base, "phase": "consent" if study.status == StudyStatus.open else "closed"}
    if participant.completed_at is not None:
        return {**base, "phase": "done", **finish_info(study)}
    if participant.started_at is None:
        return {**base, "phase": "instructions"}
    trials = trials if trials is not None else trials_of(session, participant)
    trial = current(trials)
    if trial is None:
        return {**base, "phase": "done", **finish_info(study)}
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
            "instruction": (
                f"Attention check: please choose {trial.expected} stars for this image."
                if trial.is_attention and trial.part == 2
                else None
            ),
        },
        "progress": {"answered": sum(1 for t in trials if t.answered_at), "total": len(trials)},
    }
    return out


def finish_info(study: Study) -> dict[str, Any]:
    return {"completion_code": study.completion_code, "redirect_url": study.redirect_url}


@dataclass(frozen=True)
class Answer:
    response: str | None = None
    rating: int | None = None
    response_ms: int | None = None


def answer(
    session: Session, study: Study, participant: Participant, trial_id: str, given: Answer
) -> tuple[dict[str, Any], bool]:
    """Store one answer the moment it is given. Idempotent: a repeated submission of an answered trial
    changes nothing and returns the current state with ``duplicate`` True. Commits."""
    trials = trials_of(session, participant)
    trial = next((t for t in trials if t.id == trial_id), None)
    if trial is None:
        raise StudyError(404, "no such trial in your session")
    if trial.answered_at is not None:
        out = state(session, study, participant, trials)
        session.commit()
        return out, True
    if participant.started_at is None:
        raise StudyError(409, "read the instructions first")
    if current(trials) is not trial:
        raise StudyError(409, "answer the image on your screen first")
    if trial.part == 1 and (given.response not in RESPONSES or given.rating is not None):
        raise StudyError(422, 'part 1 answers are `response`: "real" or "fake"')
    if trial.part == 2 and (given.rating not in RATING_LABELS or given.response is not None):
        raise StudyError(422, "part 2 answers are `rating`: 1, 2, 3 or 4 stars")
    if given.response_ms is not None and not 0 <= given.response_ms <= MAX_RESPONSE_MS:
        raise StudyError(422, f"response_ms must be between 0 and {MAX_RESPONSE_MS}")
    now = utcnow()
    stored = session.execute(
        _STORE_ANSWER,
        {
            "tid": trial.id,
            "now": now,
            "p_response": given.response,
            "p_rating": given.rating,
            "p_ms": given.response_ms,
        },
    )
    if stored.rowcount == 0:  # the same answer raced in from another request
        session.rollback()
        out = state(session, study, participant)
        session.commit()
        return out, True
    trial.answered_at = now
    if current(trials) is None:
        session.execute(_COMPLETE, {"pid": participant.id, "now": now})
        set_committed_value(participant, "completed_at", now)
    out = state(session, study, participant, trials)
    session.commit()
    return out, False
