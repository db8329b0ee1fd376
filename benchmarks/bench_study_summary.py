"""What the results page's "condition against condition" costs: ``summarize`` (everything the live results
page and the summary export compute from the trial rows) with and without the pairwise comparisons, side by
side in one process, on synthetic studies of 34 (the report's), 300, 3,000 and 20,000 participants with 5 + 5
answers each over the real photos and three methods. Median of REPEATS calls; no database (the rows are what
``load_rows`` returns).

    .venv/bin/python benchmarks/bench_study_summary.py
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.study import results
from backend.study.models import Study, StudyPhoto
from backend.study.results import TrialRow, summarize

REPEATS = 7
SHARES = {"real": 0.8, "unet-bins": 0.6, "cnn": 0.35, "gan": 0.33}


def study_rows(people: int) -> tuple[Study, list[TrialRow], list[tuple[str, bool, bool]], list[StudyPhoto]]:
    rng = np.random.default_rng(0)
    study = Study(slug="bench", title="bench", methods=list(SHARES)[1:], status="open")
    photos = [StudyPhoto(id=f"p{i}", name=f"p{i}.jpg", position=i) for i in range(100)]
    conditions = list(SHARES)
    rows = []
    for u in range(people):
        for part in (1, 2):
            for _ in range(5):
                c = conditions[rng.integers(0, 4)]
                photo = photos[rng.integers(0, 100)].id
                real = "real" if rng.random() < SHARES[c] else "fake"
                rows.append(
                    TrialRow(
                        f"u{u}",
                        part,
                        photo,
                        c,
                        False,
                        None,
                        real if part == 1 else None,
                        None if part == 1 else int(rng.integers(1, 5)),
                        1500,
                        True,
                    )
                )
    return study, rows, [(f"u{u}", True, True) for u in range(people)], photos


def timed(call: Callable[[], object]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {platform.processor() or 'cpu'}")
    print("| participants | without comparisons (ms) | with them (ms) | ratio | comparisons alone (ms) |")
    print("|---:|---:|---:|---:|---:|")
    for people in (34, 300, 3_000, 20_000):
        before, after, alone = measure(people)
        print(
            f"| {people:,} | {before * 1000:.1f} | {after * 1000:.1f} | {after / before:.2f}× "
            f"| {alone * 1000:.1f} |"
        )


def measure(people: int) -> tuple[float, float, float]:
    """Seconds for summarize without the comparisons (the page before), with them, and for them alone."""
    study, rows, participants, photos = study_rows(people)
    whole = partial(summarize, study, rows, participants, photos)
    original = results.compare_conditions
    results.compare_conditions = lambda conditions, tables, parts: []
    try:
        before = timed(whole)
    finally:
        results.compare_conditions = original
    answered = [r for r in rows if r.answered]
    tables = results.per_participant(answered, study.conditions)
    return before, timed(whole), timed(partial(original, study.conditions, tables, (1, 2)))


if __name__ == "__main__":
    main()
