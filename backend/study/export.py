"""Streamed exports of a study: trials (long format), participants, stimuli, the summary and a codebook that
describes every column, as CSV or JSON (and all of them in one zip).

Every CSV cell that a spreadsheet could read as a formula is neutralised with an apostrophe: a cell that
begins with = + - @ (or a tab / carriage return), and, for spreadsheets that split cells on ; , or tab, every
such character inside a cell followed by a formula character. Our ids are letters and digits only, so the
guard never rewrites them. Timestamps are ISO 8601 in UTC with a `Z`. Preview participants never appear. The
generators open their own database session, so a response can keep streaming after the request's session is
gone.

A study of one part (real or colorized only, or stars only) keeps every file's columns, so that one script
reads every study's exports; the columns of the part it has not are empty (never 0, which would read "no
answers yet"), as the codebook says.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.db import close_quietly
from backend.models import Job
from backend.study.models import REAL, Participant, Stimulus, Study, StudyPhoto, Trial
from backend.study.results import study_summary
from backend.study.stats import DIFFERENCE_INTERVAL, RATING_INTERVAL, SHARE_INTERVAL, median

DEFAULT_FAST_MS = 400  # STUDY_FAST_ANSWER_MS's default


@dataclass(frozen=True)
class ExportOptions:
    fast_ms: int = DEFAULT_FAST_MS  # answers faster than this (server-measured) are flagged too_fast
    exclude_failed_attention: bool = False  # the summary leaves out participants who failed a check

    def file_name(self, kind: str, fmt: str) -> str:
        """An export's file name: ``summary-passed-attention.csv`` when the summary leaves those out."""
        view = "-passed-attention" if kind in SUMMARIES and self.exclude_failed_attention else ""
        return f"{kind}{view}.{fmt}"


KINDS = ("trials", "participants", "stimuli", "summary", "comparisons", "codebook")
SUMMARIES = ("summary", "comparisons")  # kinds that follow the results page's attention toggle
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
EMBEDDED_FORMULA = re.compile(r"([;,\t\r\n]\s*)(?=[=+\-@])")
BATCH = 500
IDENTICAL_MIN_ANSWERS = 3  # a part with fewer answers is never flagged "identical throughout"

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
    "server_response_ms",
    "too_fast",
    "answered",
    "shown_at",
    "answered_at",
    "attention",
    "attention_expected",
    "attention_passed",
    "participant_status",
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
    "status",
    "texts_version",
    "receipt",
    "answers",
    "attention_failed",
    "too_fast_answers",
    "identical_answers",
    "median_server_response_ms",
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
# Each part's columns of each export: a study without that part leaves them empty.
PART_COLUMNS: dict[int, dict[str, list[str]]] = {
    1: {
        "summary": [
            "part1_n",
            "part1_participants",
            "judged_real",
            "share_real",
            "share_real_low",
            "share_real_high",
            "share_real_design_effect",
            "share_correct",
        ],
        "stimuli": ["shown_part1"],
        "comparisons": [
            "share_real_difference",
            "share_real_low",
            "share_real_high",
            "share_real_differs",
            "share_real_more_participants",
        ],
    },
    2: {
        "summary": [
            "part2_n",
            "part2_participants",
            "mean_rating",
            "rating_sd",
            "rating_low",
            "rating_high",
            *(f"stars_{k}" for k in range(1, 5)),
        ],
        "stimuli": ["shown_part2"],
        "comparisons": [
            "rating_difference",
            "rating_low",
            "rating_high",
            "rating_differs",
            "rating_more_participants",
        ],
    },
}
SUMMARY_COLUMNS = [
    "study",
    "condition",
    "label",
    *PART_COLUMNS[1]["summary"],
    *PART_COLUMNS[2]["summary"],
    "median_response_ms",
    "failed_attention_excluded",
]
COMPARISON_COLUMNS = [
    "study",
    "condition_a",
    "condition_b",
    *PART_COLUMNS[1]["comparisons"],
    *PART_COLUMNS[2]["comparisons"],
    "failed_attention_excluded",
]
CODEBOOK_COLUMNS = ["file", "column", "type", "meaning"]
# The results page's wording (stats), with the columns the interval is computed from
SHARE_REAL_INTERVAL = f"{SHARE_INTERVAL}: Wilson's on part1_n / share_real_design_effect answers"
NO_INTERVAL = (
    "empty with fewer than 2 participants, or where every participant's answers moved alike between the two, "
    "which leaves no spread to estimate it from"
)
# Said of every column of one part's figures: a study may leave either part out (0 trials).
NO_PART1 = "Empty in a study without part 1 (a rating study only)."
NO_PART2 = "Empty in a study without part 2 (a real-vs-fake survey only)."

# file -> column -> (type, meaning); a test checks that every exported column is described here.
CODEBOOK: dict[str, dict[str, tuple[str, str]]] = {
    "trials": {
        "study": ("text", "Study slug."),
        "participant": ("id", "Participant id (as in participants.participant)."),
        "external_id": ("text", "PROLIFIC_PID, the link's `participant`, or anon-<id> for anonymous people."),
        "part": (
            "1 or 2",
            "1: real photo or colorized; 2: rating 1-4 stars. A study of one part has that part's only (a "
            "rating study only: 2 throughout).",
        ),
        "trial_index": ("integer", "Position within the part as shown, from 1 (attention checks included)."),
        "stimulus": ("id", "Stimulus id (as in stimuli.stimulus)."),
        "photo": ("id", "Photo id (as in stimuli.photo)."),
        "photo_name": ("text", "File name of the photo as uploaded."),
        "condition": ("text", "real, a method name, or attention."),
        "method": ("text", "The colorization method (empty for real photos and attention checks)."),
        "response": (
            "real|fake",
            "Part 1 answer: real photo or colorized by a computer (empty if unanswered).",
        ),
        "correct": ("true|false", "Part 1: the answer matches the truth (empty in part 2 or unanswered)."),
        "rating": ("1-4", "Part 2 answer in stars (empty in part 1 or unanswered)."),
        "response_ms": (
            "ms",
            "Time from image shown to answer as measured and sent by the browser (unchecked).",
        ),
        "server_response_ms": ("ms", "Time between the server serving the trial and receiving its answer."),
        "too_fast": ("true|false", "server_response_ms below STUDY_FAST_ANSWER_MS (implausibly fast)."),
        "answered": (
            "true|false",
            "Whether the trial has an answer (incomplete participants have unanswered).",
        ),
        "shown_at": ("ISO 8601 UTC", "When the server first served the trial."),
        "answered_at": ("ISO 8601 UTC", "When the answer was stored."),
        "attention": ("true|false", "An attention-check trial (never counted in the results)."),
        "attention_expected": (
            "text",
            "Attention checks: the instructed answer (fake, or a number of stars).",
        ),
        "attention_passed": ("true|false", "Attention checks: the answer was the instructed one."),
        "participant_status": ("text", "The participant's status (see participants.status)."),
    },
    "participants": {
        "study": ("text", "Study slug."),
        "participant": ("id", "Participant id."),
        "external_id": ("text", "PROLIFIC_PID, the link's `participant`, or anon-<id> for anonymous people."),
        "source": ("text", "prolific, url (the link's `participant`) or anonymous (one per browser)."),
        "prolific_study_id": ("text", "Prolific STUDY_ID from the link."),
        "prolific_session_id": ("text", "Prolific SESSION_ID the participant is bound to."),
        "consented_at": ("ISO 8601 UTC", "Consent given."),
        "started_at": ("ISO 8601 UTC", "Instructions read, first trial shown."),
        "completed_at": ("ISO 8601 UTC", "Last answer stored (empty: not completed)."),
        "status": ("text", "active, excluded (by the researcher), returned or timed_out; only active count."),
        "texts_version": ("integer", "Version of the consent and instructions texts the participant saw."),
        "receipt": ("text", "The participant's own code shown on the last page (checks a completion claim)."),
        "answers": ("integer", "Trials answered (attention checks included)."),
        "attention_failed": ("true|false", "At least one attention check answered wrongly."),
        "too_fast_answers": (
            "integer",
            "Answers with server_response_ms below STUDY_FAST_ANSWER_MS (attention checks included, as in "
            "answers).",
        ),
        "identical_answers": (
            "true|false",
            "The same answer throughout a part (3+ answers in that part, attention checks left out).",
        ),
        "median_server_response_ms": ("ms", "Median server-measured time per answer (as in answers)."),
        "user_agent": ("text", "The browser's User-Agent header (first 300 characters)."),
    },
    "stimuli": {
        "study": ("text", "Study slug."),
        "stimulus": ("id", "Stimulus id."),
        "photo": ("id", "Photo id."),
        "photo_name": ("text", "File name of the photo as uploaded."),
        "photo_position": ("integer", "Order of the photo in the study, from 0."),
        "condition": ("text", "real, a method name, or attention."),
        "method": ("text", "The colorization method (empty for real photos and attention checks)."),
        "job": ("id", "The colorization job (method conditions)."),
        "job_status": ("text", "Status of that job; real for real photos, n/a for attention checks."),
        "shown_part1": (
            "integer",
            "Times shown in part 1 (every participant; trials assigned but never reached do not count).",
        ),
        "shown_part2": ("integer", "Times shown in part 2 (as shown_part1)."),
    },
    "summary": {
        "study": ("text", "Study slug."),
        "condition": ("text", "real or a method name."),
        "label": ("text", "Display name of the condition."),
        "part1_n": (
            "integer",
            "Part 1 answers counted (active participants, no attention checks); answers, not independent "
            "draws (see part1_participants).",
        ),
        "part1_participants": ("integer", "Participants who gave those part 1 answers."),
        "judged_real": ("integer", "Part 1 answers 'real photo'."),
        "share_real": ("0-1", "judged_real / part1_n (the share of answers, as in the report's Fig. 16)."),
        "share_real_low": (
            "0-1",
            f"{SHARE_REAL_INTERVAL}, lower end (empty with fewer than 2 participants).",
        ),
        "share_real_high": ("0-1", f"{SHARE_REAL_INTERVAL}, upper end."),
        "share_real_design_effect": (
            "number ≥ 1",
            "Design effect of clustering by participant: the cluster-robust variance of share_real over the "
            "variance if every answer were independent, at least 1 (1 when each participant answered once, "
            "or every answer was the same). The interval is Wilson's on part1_n / share_real_design_effect "
            "answers.",
        ),
        "share_correct": ("0-1", "Share of part 1 answers that were right."),
        "part2_n": (
            "integer",
            "Part 2 ratings counted; ratings, not independent draws (see part2_participants).",
        ),
        "part2_participants": ("integer", "Participants who gave those part 2 ratings."),
        "mean_rating": ("1-4", "Mean rating (over the ratings)."),
        "rating_sd": ("stars", "Sample standard deviation of the ratings."),
        "rating_low": (
            "1-4",
            f"{RATING_INTERVAL}, lower end (empty with fewer than 2 participants).",
        ),
        "rating_high": ("1-4", f"{RATING_INTERVAL}, upper end."),
        **{
            f"stars_{k}": ("integer", f"Part 2 ratings of {k} star{'s' if k > 1 else ''}.")
            for k in range(1, 5)
        },
        "median_response_ms": ("ms", "Median browser-measured response time."),
        "failed_attention_excluded": (
            "true|false",
            "Participants who failed an attention check are left out of this summary (the results page's "
            "toggle; the file name then ends in -passed-attention).",
        ),
    },
    "comparisons": {
        "study": ("text", "Study slug."),
        "condition_a": ("text", "real or a method name: the first of the pair (the study's order)."),
        "condition_b": (
            "text",
            "The second of the pair; each row is condition_a's figure less condition_b's.",
        ),
        "share_real_difference": (
            "-1..1",
            "share_real of condition_a less that of condition_b (summary.csv).",
        ),
        "share_real_low": ("-1..1", f"{DIFFERENCE_INTERVAL}, lower end ({NO_INTERVAL})."),
        "share_real_high": ("-1..1", f"{DIFFERENCE_INTERVAL}, upper end."),
        "share_real_differs": ("true|false", "The share_real interval leaves out 0."),
        "share_real_more_participants": (
            "integer",
            "About how many more participants would make the share_real interval leave out 0 if the "
            "difference so far and each participant's spread held, with the t quantile of the larger total "
            "(0: it does; empty: no difference or no interval yet). An estimate under those assumptions: "
            "early differences tend to shrink, which would need more.",
        ),
        "rating_difference": ("stars", "mean_rating of condition_a less that of condition_b."),
        "rating_low": ("stars", f"{DIFFERENCE_INTERVAL}, lower end ({NO_INTERVAL})."),
        "rating_high": ("stars", f"{DIFFERENCE_INTERVAL}, upper end."),
        "rating_differs": ("true|false", "The rating interval leaves out 0."),
        "rating_more_participants": ("integer", "As share_real_more_participants, for the rating."),
        "failed_attention_excluded": (
            "true|false",
            "Participants who failed an attention check are left out (as in summary.csv).",
        ),
    },
    "codebook": {
        "file": ("text", "Export file the column belongs to."),
        "column": ("text", "Column name."),
        "type": ("text", "Type or unit of the values; empty cells mean no value."),
        "meaning": ("text", "What the column holds."),
    },
}


def _say_when_empty(codebook: dict[str, dict[str, tuple[str, str]]]) -> None:
    """Add to each part's columns in the codebook that a study without that part leaves them empty."""
    for part, note in ((1, NO_PART1), (2, NO_PART2)):
        for file, columns in PART_COLUMNS[part].items():
            for column in columns:
                kind, meaning = codebook[file][column]
                codebook[file][column] = (kind, f"{meaning} {note}")


_say_when_empty(CODEBOOK)


def neutralise(value: Any) -> Any:
    """The cell as a spreadsheet may show it without evaluating anything (see the module docstring)."""
    if not isinstance(value, str):
        return value
    guarded = EMBEDDED_FORMULA.sub(r"\1'", value)
    if guarded != value or guarded.startswith(FORMULA_PREFIXES):
        return "'" + guarded
    return value


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_utc(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _json_value(value: Any) -> Any:
    return iso_utc(value) if isinstance(value, datetime) else value


def _elapsed_ms(start: datetime | None, end: datetime | None) -> int | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000)


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


def trial_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    q = (
        select(Trial, Participant.external_id, Participant.status, StudyPhoto.name)
        .join(Participant, Participant.id == Trial.participant_id)
        .join(StudyPhoto, StudyPhoto.id == Trial.photo_id)
        .where(Trial.study_id == study.id, Participant.is_preview.is_(False))
        .order_by(Participant.consented_at, Participant.id, Trial.part, Trial.position)
        .execution_options(yield_per=BATCH)
    )
    for trial, external_id, status, photo_name in session.execute(q):
        server_ms = _elapsed_ms(trial.shown_at, trial.answered_at)
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
            "server_response_ms": server_ms,
            "too_fast": None if server_ms is None else server_ms < options.fast_ms,
            "answered": trial.answered_at is not None,
            "shown_at": trial.shown_at,
            "answered_at": trial.answered_at,
            "attention": trial.is_attention,
            "attention_expected": trial.expected,
            "attention_passed": trial.attention_passed,
            "participant_status": status,
        }


@dataclass
class _Behaviour:
    answers: int = 0
    server_ms: list[int] = field(default_factory=list)
    given: dict[int, set[str]] = field(default_factory=lambda: {1: set(), 2: set()})
    counts: dict[int, int] = field(default_factory=lambda: {1: 0, 2: 0})


def _behaviour(session: Session, study_id: str) -> dict[str, _Behaviour]:
    """Per participant: answers and server-measured times (every answered trial, as ``answers`` counts
    them), and the distinct answers given in each part (attention checks left out: their answer is
    instructed, so it would hide a participant who gave one answer to everything else)."""
    out: dict[str, _Behaviour] = defaultdict(_Behaviour)
    q = select(
        Trial.participant_id,
        Trial.part,
        Trial.response,
        Trial.rating,
        Trial.shown_at,
        Trial.answered_at,
        Trial.is_attention,
    ).where(Trial.study_id == study_id, Trial.answered_at.is_not(None))
    for pid, part, response, rating, shown_at, answered_at, is_attention in session.execute(q):
        b = out[pid]
        b.answers += 1
        ms = _elapsed_ms(shown_at, answered_at)
        if ms is not None:
            b.server_ms.append(ms)
        if not is_attention:
            b.given[part].add(str(response if part == 1 else rating))
            b.counts[part] += 1
    return out


def participant_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    failed = _attention_failures(session, study.id)
    behaviour = _behaviour(session, study.id)
    q = (
        select(Participant)
        .where(Participant.study_id == study.id, Participant.is_preview.is_(False))
        .order_by(Participant.consented_at, Participant.id)
        .execution_options(yield_per=BATCH)
    )
    for p in session.scalars(q):
        b = behaviour.get(p.id, _Behaviour())
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
            "status": p.status,
            "texts_version": p.texts_version,
            "receipt": p.receipt,
            "answers": b.answers,
            "attention_failed": p.id in failed,
            "too_fast_answers": sum(1 for ms in b.server_ms if ms < options.fast_ms),
            "identical_answers": any(
                b.counts[part] >= IDENTICAL_MIN_ANSWERS and len(b.given[part]) == 1 for part in (1, 2)
            ),
            "median_server_response_ms": None if not b.server_ms else round(median(b.server_ms) or 0),
            "user_agent": p.user_agent,
        }


def stimulus_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    shown = {
        (sid, part): n
        for sid, part, n in session.execute(
            select(Trial.stimulus_id, Trial.part, func.count())
            .join(Participant, Participant.id == Trial.participant_id)
            .where(Trial.study_id == study.id, Participant.is_preview.is_(False), Trial.shown_at.is_not(None))
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
    parts = study.parts
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
            "shown_part1": shown.get((stim.id, 1), 0) if 1 in parts else None,
            "shown_part2": shown.get((stim.id, 2), 0) if 2 in parts else None,
        }


def summary_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    summary = study_summary(session, study, exclude_failed_attention=options.exclude_failed_attention)
    for c in summary["conditions"]:
        row: dict[str, Any] = {"study": study.slug, "condition": c["condition"], "label": c["label"]}
        if (p1 := c["part1"]) is not None:  # None: the study has no part 1, its columns stay empty
            row |= {
                "part1_n": p1["n"],
                "part1_participants": p1["participants"],
                "judged_real": p1["judged_real"],
                "share_real": p1["share_real"],
                "share_real_low": p1["low"],
                "share_real_high": p1["high"],
                "share_real_design_effect": p1["design_effect"],
                "share_correct": p1["share_correct"],
            }
        if (p2 := c["part2"]) is not None:
            row |= {
                "part2_n": p2["n"],
                "part2_participants": p2["participants"],
                "mean_rating": p2["mean"],
                "rating_sd": p2["sd"],
                "rating_low": p2["low"],
                "rating_high": p2["high"],
                **{f"stars_{k}": n for k, n in p2["distribution"].items()},
            }
        yield {
            **dict.fromkeys(SUMMARY_COLUMNS),
            **row,
            "median_response_ms": c["median_response_ms"],
            "failed_attention_excluded": options.exclude_failed_attention,
        }


def comparison_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    summary = study_summary(session, study, exclude_failed_attention=options.exclude_failed_attention)
    for c in summary["comparisons"]:
        row: dict[str, Any] = dict.fromkeys(COMPARISON_COLUMNS)
        row |= {"study": study.slug, "condition_a": c["a"], "condition_b": c["b"]}
        for measure in ("share_real", "rating"):
            if (d := c[measure]) is not None:  # None: the study has not this measure's part, columns empty
                row |= {
                    f"{measure}_difference": d["difference"],
                    f"{measure}_low": d["low"],
                    f"{measure}_high": d["high"],
                    f"{measure}_differs": d["differs"],
                    f"{measure}_more_participants": d["more_participants"],
                }
        row["failed_attention_excluded"] = options.exclude_failed_attention
        yield row


def codebook_rows(session: Session, study: Study, options: ExportOptions) -> Iterator[dict[str, Any]]:
    for file, columns in CODEBOOK.items():
        for column, (kind, meaning) in columns.items():
            yield {"file": f"{file}.csv", "column": column, "type": kind, "meaning": meaning}


ROWS: dict[str, tuple[Callable[[Session, Study, ExportOptions], Iterator[dict[str, Any]]], list[str]]] = {
    "trials": (trial_rows, TRIAL_COLUMNS),
    "participants": (participant_rows, PARTICIPANT_COLUMNS),
    "stimuli": (stimulus_rows, STIMULUS_COLUMNS),
    "summary": (summary_rows, SUMMARY_COLUMNS),
    "comparisons": (comparison_rows, COMPARISON_COLUMNS),
    "codebook": (codebook_rows, CODEBOOK_COLUMNS),
}


def zip_all(session_maker: Callable[[], Session], study_id: str, options: ExportOptions) -> bytes:
    """Every export, CSV and JSON, and the codebook, in one zip archive."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for kind in KINDS:
            for fmt in ("csv", "json"):
                text = "".join(stream(session_maker, study_id, kind, fmt, options))
                archive.writestr(options.file_name(kind, fmt), text)
    return buf.getvalue()


def stream(
    session_maker: Callable[[], Session], study_id: str, kind: str, fmt: str, options: ExportOptions
) -> Iterator[str]:
    """The export as text chunks; opens (and closes) its own session."""
    producer, columns = ROWS[kind]
    session = session_maker()
    try:
        study = session.get(Study, study_id)
        if study is None:
            return
        if fmt == "json" and kind == "summary":
            full = study_summary(session, study, exclude_failed_attention=options.exclude_failed_attention)
            yield json.dumps(full, ensure_ascii=False, indent=1)
            return
        rows = producer(session, study, options)
        yield from (csv_stream(columns, rows) if fmt == "csv" else json_stream(rows))
    finally:
        close_quietly(session)  # while the response streams: an error here would cut it off
