"""Streamed exports of a study: trials (long format), participants, stimuli and the summary, as CSV or JSON.

CSV cells that begin with = + - @ (or a tab / carriage return) are neutralised with a leading apostrophe so
that a spreadsheet never evaluates them as formulas. The generators open their own database session, so a
response can keep streaming after the request's session is gone.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.models import Job
from backend.study.models import REAL, Participant, Stimulus, Study, StudyPhoto, Trial
from backend.study.results import study_summary

KINDS = ("trials", "participants", "stimuli", "summary")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
BATCH = 500

TRIAL_COLUMNS = [
    "study",
    "participant",
    "external_id",
    "part",
    "trial_index",
    "stimulus",
    "photo",
    "photo_name",
    "condition",
    "method",
    "response",
    "correct",
    "rating",
    "response_ms",
    "shown_at",
    "answered_at",
    "attention",
    "attention_expected",
    "attention_passed",
]
PARTICIPANT_COLUMNS = [
    "study",
    "participant",
    "external_id",
    "source",
    "prolific_study_id",
    "prolific_session_id",
    "consented_at",
    "started_at",
    "completed_at",
    "answers",
    "attention_failed",
    "user_agent",
]
STIMULUS_COLUMNS = [
    "study",
    "stimulus",
    "photo",
    "photo_name",
    "photo_position",
    "condition",
    "method",
    "job",
    "job_status",
    "shown_part1",
    "shown_part2",
]
SUMMARY_COLUMNS = [
    "study",
    "condition",
    "label",
    "part1_n",
    "judged_real",
    "share_real",
    "share_real_low",
    "share_real_high",
    "share_correct",
    "part2_n",
    "mean_rating",
    "rating_sd",
    "rating_low",
    "rating_high",
    "median_response_ms",
]


def neutralise(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def csv_stream(columns: list[str], rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for count, row in enumerate(rows, start=1):
        writer.writerow([neutralise(_cell(row.get(c))) for c in columns])
        if count % BATCH == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def json_stream(rows: Iterable[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("\n" if first else ",\n") + json.dumps(
            {k: _json_value(v) for k, v in row.items()}, ensure_ascii=False
        )
        first = False
    yield "\n]\n"


def _attention_failures(session: Session, study_id: str) -> set[str]:
    failed = set()
    for pid, part, expected, response, rating in session.execute(
        select(Trial.participant_id, Trial.part, Trial.expected, Trial.response, Trial.rating).where(
            Trial.study_id == study_id, Trial.is_attention.is_(True), Trial.answered_at.is_not(None)
        )
    ):
        if (response if part == 1 else str(rating)) != expected:
            failed.add(pid)
    return failed


def trial_rows(session: Session, study: Study) -> Iterator[dict[str, Any]]:
    q = (
        select(Trial, Participant.external_id, StudyPhoto.name)
        .join(Participant, Participant.id == Trial.participant_id)
        .join(StudyPhoto, StudyPhoto.id == Trial.photo_id)
        .where(Trial.study_id == study.id)
        .order_by(Participant.consented_at, Participant.id, Trial.part, Trial.position)
        .execution_options(yield_per=BATCH)
    )
    for trial, external_id, photo_name in session.execute(q):
        yield {
            "study": study.slug,
            "participant": trial.participant_id,
            "external_id": external_id,
            "part": trial.part,
            "trial_index": trial.position + 1,
            "stimulus": trial.stimulus_id,
            "photo": trial.photo_id,
            "photo_name": photo_name,
            "condition": trial.condition,
            "method": trial.condition if trial.condition in study.methods else None,
            "response": trial.response,
            "correct": trial.correct,
            "rating": trial.rating,
            "response_ms": trial.response_ms,
            "shown_at": trial.shown_at,
            "answered_at": trial.answered_at,
            "attention": trial.is_attention,
            "attention_expected": trial.expected,
            "attention_passed": trial.attention_passed,
        }


def participant_rows(session: Session, study: Study) -> Iterator[dict[str, Any]]:
    failed = _attention_failures(session, study.id)
    answers = dict(
        session.execute(
            select(Trial.participant_id, func.count())
            .where(Trial.study_id == study.id, Trial.answered_at.is_not(None))
            .group_by(Trial.participant_id)
        ).all()
    )
    q = (
        select(Participant)
        .where(Participant.study_id == study.id)
        .order_by(Participant.consented_at, Participant.id)
        .execution_options(yield_per=BATCH)
    )
    for p in session.scalars(q):
        yield {
            "study": study.slug,
            "participant": p.id,
            "external_id": p.external_id,
            "source": p.source,
            "prolific_study_id": p.prolific_study_id,
            "prolific_session_id": p.prolific_session_id,
            "consented_at": p.consented_at,
            "started_at": p.started_at,
            "completed_at": p.completed_at,
            "answers": answers.get(p.id, 0),
            "attention_failed": p.id in failed,
            "user_agent": p.user_agent,
        }


def stimulus_rows(session: Session, study: Study) -> Iterator[dict[str, Any]]:
    shown = {
        (sid, part): n
        for sid, part, n in session.execute(
            select(Trial.stimulus_id, Trial.part, func.count())
            .where(Trial.study_id == study.id)
            .group_by(Trial.stimulus_id, Trial.part)
        )
    }
    q = (
        select(Stimulus, StudyPhoto, Job.status)
        .join(StudyPhoto, StudyPhoto.id == Stimulus.photo_id)
        .outerjoin(Job, Job.id == Stimulus.job_id)
        .where(Stimulus.study_id == study.id)
        .order_by(StudyPhoto.position, Stimulus.condition)
    )
    for stim, photo, job_status in session.execute(q):
        yield {
            "study": study.slug,
            "stimulus": stim.id,
            "photo": photo.id,
            "photo_name": photo.name,
            "photo_position": photo.position,
            "condition": stim.condition,
            "method": stim.condition if stim.condition in study.methods else None,
            "job": stim.job_id,
            "job_status": job_status if stim.job_id else ("n/a" if stim.condition != REAL else "real"),
            "shown_part1": shown.get((stim.id, 1), 0),
            "shown_part2": shown.get((stim.id, 2), 0),
        }


def summary_rows(session: Session, study: Study) -> Iterator[dict[str, Any]]:
    summary = study_summary(session, study)
    for c in summary["conditions"]:
        p1, p2 = c["part1"], c["part2"]
        yield {
            "study": study.slug,
            "condition": c["condition"],
            "label": c["label"],
            "part1_n": p1["n"],
            "judged_real": p1["judged_real"],
            "share_real": p1["share_real"],
            "share_real_low": p1["low"],
            "share_real_high": p1["high"],
            "share_correct": p1["share_correct"],
            "part2_n": p2["n"],
            "mean_rating": p2["mean"],
            "rating_sd": p2["sd"],
            "rating_low": p2["low"],
            "rating_high": p2["high"],
            "median_response_ms": c["median_response_ms"],
        }


ROWS: dict[str, tuple[Callable[[Session, Study], Iterator[dict[str, Any]]], list[str]]] = {
    "trials": (trial_rows, TRIAL_COLUMNS),
    "participants": (participant_rows, PARTICIPANT_COLUMNS),
    "stimuli": (stimulus_rows, STIMULUS_COLUMNS),
    "summary": (summary_rows, SUMMARY_COLUMNS),
}


def stream(session_maker: Callable[[], Session], study_id: str, kind: str, fmt: str) -> Iterator[str]:
    """The export as text chunks; opens (and closes) its own session."""
    producer, columns = ROWS[kind]
    session = session_maker()
    try:
        study = session.get(Study, study_id)
        if study is None:
            return
        if fmt == "json" and kind == "summary":
            full = study_summary(session, study)
            yield json.dumps(full, ensure_ascii=False, indent=1)
            return
        rows = producer(session, study)
        yield from (csv_stream(columns, rows) if fmt == "csv" else json_stream(rows))
    finally:
        session.close()
