"""Live results of a study, per condition (the report's Fig. 16 and 17) and per photo.

Attention-check trials never count in the results; participants who failed an attention check can be left
out entirely (``exclude_failed_attention``). Every interval counts a participant's answers as one draw
(:mod:`backend.study.stats`), so each comes with both counts: answers and participants.

A study of one part (real or colorized only, or stars only) has the other part's figures as None throughout
(``part1``/``part2`` per condition, the per-photo cells, the answers, the comparisons' measure): "no such
part", never a 0 that reads as "no answers yet". ``parts`` says which the study has.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from backend.study import stats
from backend.study.models import REAL, Participant, ParticipantStatus, Study, StudyPhoto, Trial


@dataclass(frozen=True)
class TrialRow:
    participant_id: str
    part: int
    photo_id: str
    condition: str
    is_attention: bool
    expected: str | None
    response: str | None
    rating: int | None
    response_ms: int | None
    answered: bool


def condition_label(condition: str) -> str:
    return "Real photo" if condition == REAL else condition


def _counted(study: Study) -> Select[str]:
    """The participants whose answers count: not previews, not excluded or marked by the researcher."""
    return select(Participant.id).where(
        Participant.study_id == study.id,
        Participant.is_preview.is_(False),
        Participant.status == ParticipantStatus.active,
    )


def load_rows(session: Session, study: Study) -> list[TrialRow]:
    q = select(
        Trial.participant_id,
        Trial.part,
        Trial.photo_id,
        Trial.condition,
        Trial.is_attention,
        Trial.expected,
        Trial.response,
        Trial.rating,
        Trial.response_ms,
        Trial.answered_at,
    ).where(Trial.study_id == study.id, Trial.participant_id.in_(_counted(study)))
    return [TrialRow(*r[:9], answered=r[9] is not None) for r in session.execute(q)]


def _missed(part: int, response: str | None, rating: int | None, expected: str | None) -> bool:
    """An answered attention check whose answer is not the expected one."""
    return (response if part == 1 else str(rating)) != expected


def failed_attention(rows: list[TrialRow]) -> set[str]:
    return {
        r.participant_id
        for r in rows
        if r.is_attention and r.answered and _missed(r.part, r.response, r.rating, r.expected)
    }


def attention_outcomes(session: Session, study: Study) -> dict[str, bool]:
    """Every participant who answered an attention check -> whether they failed one (the participants
    table shows it for everyone, excluded or not; the results count only those who count)."""
    outcomes: dict[str, bool] = {}
    for pid, part, response, rating, expected in session.execute(
        select(Trial.participant_id, Trial.part, Trial.response, Trial.rating, Trial.expected).where(
            Trial.study_id == study.id, Trial.is_attention.is_(True), Trial.answered_at.is_not(None)
        )
    ):
        outcomes[pid] = outcomes.get(pid, False) or _missed(part, response, rating, expected)
    return outcomes


def _part1(rows: list[TrialRow], hits: np.ndarray, answers: np.ndarray) -> dict[str, Any]:
    """A condition's part-1 answers; ``hits`` and ``answers``: each participant's answers "real" and answers
    (:func:`per_participant`'s column of the condition)."""
    share = stats.clustered_share(hits, answers)
    correct = sum(1 for r in rows if (r.response == "real") == (r.condition == REAL))
    return {
        "n": share.n,
        "participants": share.participants,
        "judged_real": share.k,
        "share_real": share.p,
        "low": share.low,
        "high": share.high,
        "design_effect": share.design_effect,
        "correct": correct,
        "share_correct": correct / len(rows) if rows else None,
    }


def _part2(rows: list[TrialRow], stars: np.ndarray, ratings: np.ndarray) -> dict[str, Any]:
    """A condition's part-2 answers; ``stars`` and ``ratings``: each participant's summed stars and ratings
    (:func:`per_participant`'s column of the condition)."""
    given = [r.rating for r in rows if r.rating is not None]
    m = stats.mean_ci(given)
    low, high = stats.rating_interval(stars, ratings)
    return {
        "n": m.n,
        "participants": int((ratings > 0).sum()),
        "mean": m.mean,
        "sd": m.sd,
        "low": low,
        "high": high,
        "distribution": {str(k): sum(1 for v in given if v == k) for k in (1, 2, 3, 4)},
    }


def summarize(
    study: Study,
    rows: list[TrialRow],
    participants: list[tuple[str, bool, bool]],
    photos: list[StudyPhoto],
    *,
    exclude_failed_attention: bool = False,
    marked: int = 0,
) -> dict[str, Any]:
    """The study's results from its trial rows; ``participants`` are (id, started, completed); ``marked``:
    participants the researcher excluded or marked returned / timed out (already left out of both)."""
    parts = study.parts
    has1, has2 = 1 in parts, 2 in parts
    failed = failed_attention(rows)
    excluded = failed if exclude_failed_attention else set()
    answered = [r for r in rows if r.answered and not r.is_attention and r.participant_id not in excluded]
    # counted like part1/part2: the participants left out by the toggle are left out here too
    attention = [r for r in rows if r.is_attention and r.answered and r.participant_id not in excluded]
    by_cond: dict[str, list[TrialRow]] = defaultdict(list)
    for r in answered:
        by_cond[r.condition].append(r)
    tables = per_participant(answered, study.conditions)
    (hits, answers), (stars, ratings) = tables[1], tables[2]
    conditions = []
    for j, cond in enumerate(study.conditions):
        cr = by_cond.get(cond, [])
        times = [r.response_ms for r in cr if r.response_ms is not None]
        conditions.append(
            {
                "condition": cond,
                "label": condition_label(cond),
                "part1": _part1([r for r in cr if r.part == 1], hits[:, j], answers[:, j]) if has1 else None,
                "part2": _part2([r for r in cr if r.part == 2], stars[:, j], ratings[:, j]) if has2 else None,
                "median_response_ms": stats.median(times),
            }
        )
    by_photo: dict[str, dict[str, list[TrialRow]]] = defaultdict(lambda: defaultdict(list))
    for r in answered:
        by_photo[r.photo_id][r.condition].append(r)
    photo_rows = []
    for photo in photos:
        cells = {}
        for cond in study.conditions:
            cr = by_photo[photo.id].get(cond, [])
            p1 = [r for r in cr if r.part == 1]
            p2 = [r.rating for r in cr if r.part == 2 and r.rating is not None]
            real = sum(1 for r in p1 if r.response == "real")
            cells[cond] = {
                "n1": len(p1) if has1 else None,
                "judged_real": real if has1 else None,
                "share_real": real / len(p1) if p1 else None,
                "n2": len(p2) if has2 else None,
                "mean_rating": sum(p2) / len(p2) if p2 else None,
            }
        photo_rows.append(
            {"photo_id": photo.id, "name": photo.name, "position": photo.position, "conditions": cells}
        )
    comparisons = compare_conditions(study.conditions, tables, parts)
    counted = [p for p in participants if p[0] not in excluded]
    total = len(counted)
    completed = sum(1 for p in counted if p[2])
    times = [r.response_ms for r in answered if r.response_ms is not None]
    return {
        "study": {"slug": study.slug, "title": study.title, "status": study.status, "methods": study.methods},
        "participants": {
            "total": total,
            "started": sum(1 for p in counted if p[1]),
            "completed": completed,
            "completion_rate": completed / total if total else None,
            "failed_attention": len(failed),
            "excluded": len(excluded),
            "failed_attention_excluded": exclude_failed_attention,
            "marked": marked,
        },
        "parts": list(parts),
        "answers": {
            "part1": sum(1 for r in answered if r.part == 1) if has1 else None,
            "part2": sum(1 for r in answered if r.part == 2) if has2 else None,
            "attention": len(attention),
        },
        "median_response_ms": stats.median(times),
        "conditions": conditions,
        "photos": photo_rows,
        "intervals": "; ".join(
            f"{measure}: {interval}"
            for part, measure, interval in (
                (1, "share judged real", stats.SHARE_INTERVAL),
                (2, "mean rating", stats.RATING_INTERVAL),
            )
            if part in parts
        ),
        "comparisons": comparisons,
        "comparison_intervals": stats.DIFFERENCE_INTERVAL,
    }


def per_participant(rows: list[TrialRow], conditions: list[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Per part, (participants, conditions) sums and counts of the answers: part 1 sums the answers "real",
    part 2 the stars; a participant who gave a condition no answer of a part counts 0 there. One pass over
    the rows (a large study has hundreds of thousands)."""
    people: dict[str, int] = {}
    column = {c: j for j, c in enumerate(conditions)}
    cells: dict[int, list[int]] = {1: [], 2: []}
    values: dict[int, list[float]] = {1: [], 2: []}
    for r in rows:
        if r.part == 1:
            value = None if r.response is None else float(r.response == "real")
        else:
            value = None if r.rating is None else float(r.rating)
        if value is None or r.part not in cells or r.condition not in column:
            continue
        cells[r.part].append(
            people.setdefault(r.participant_id, len(people)) * len(conditions) + column[r.condition]
        )
        values[r.part].append(value)
    shape = (len(people), len(conditions))
    tables = {}
    for part in (1, 2):
        at = np.asarray(cells[part], dtype=np.int64)
        weights = np.asarray(values[part], dtype=np.float64)
        sums = np.bincount(at, weights=weights, minlength=shape[0] * shape[1]).reshape(shape)
        counts = np.bincount(at, minlength=shape[0] * shape[1]).astype(np.float64).reshape(shape)
        tables[part] = sums, counts
    return tables


def _difference(d: stats.Difference) -> dict[str, Any]:
    return {
        "difference": d.estimate,
        "low": d.low,
        "high": d.high,
        "differs": d.excludes_zero,
        "more_participants": d.more_participants(),
    }


def compare_conditions(
    conditions: list[str], tables: dict[int, tuple[np.ndarray, np.ndarray]], parts: tuple[int, ...]
) -> list[dict[str, Any]]:
    """Every pair of conditions (in the study's order: the real photos first, then the methods): how much
    more often the first was judged real, and how many more stars it got, each with a simultaneous interval
    (:func:`stats.ratio_differences`) from :func:`per_participant`'s ``tables``; ``differs`` when the
    interval leaves out 0. A measure of a part the study has not is None, not "no difference yet"."""
    pairs = [(a, b) for a in range(len(conditions)) for b in range(a + 1, len(conditions))]
    measures: dict[str, list[dict[str, Any] | None]] = {}
    for part, measure, bounds in ((1, "share_real", (-1.0, 1.0)), (2, "rating", (-3.0, 3.0))):
        if part in parts:
            differences = stats.ratio_differences(*tables[part], pairs, bounds=bounds)
            measures[measure] = [_difference(d) for d in differences]
        else:
            measures[measure] = [None] * len(pairs)
    return [
        {
            "a": conditions[a],
            "b": conditions[b],
            "a_label": condition_label(conditions[a]),
            "b_label": condition_label(conditions[b]),
            "share_real": share,
            "rating": rating,
        }
        for (a, b), share, rating in zip(pairs, measures["share_real"], measures["rating"], strict=True)
    ]


def study_summary(
    session: Session, study: Study, *, exclude_failed_attention: bool = False
) -> dict[str, Any]:
    rows = load_rows(session, study)
    participants = [
        (pid, started is not None, completed is not None)
        for pid, started, completed in session.execute(
            select(Participant.id, Participant.started_at, Participant.completed_at).where(
                Participant.id.in_(_counted(study))
            )
        )
    ]
    marked = session.scalar(
        select(func.count()).where(
            Participant.study_id == study.id,
            Participant.is_preview.is_(False),
            Participant.status != ParticipantStatus.active,
        )
    )
    photos = list(
        session.scalars(
            select(StudyPhoto).where(StudyPhoto.study_id == study.id).order_by(StudyPhoto.position)
        )
    )
    return summarize(
        study,
        rows,
        participants,
        photos,
        exclude_failed_attention=exclude_failed_attention,
        marked=marked or 0,
    )
