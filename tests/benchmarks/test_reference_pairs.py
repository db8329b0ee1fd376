"""The pair lists that judge reference-guided colorization: the judged list and a disjoint tuning list."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter

from tests.conftest import ROOT, SHARED_DATA

sys.path.insert(0, str(ROOT / "benchmarks"))
from reference_pairs import JUDGED, build, build_tuning


def _judged() -> list[tuple[str, str, str]]:
    with JUDGED.open(newline="") as fh:
        return [(r["target"], r["reference"], r["group"]) for r in csv.DictReader(fh)]


def _photos(pairs: list[tuple[str, str, str]]) -> set[str]:
    return {photo for target, reference, _ in pairs for photo in (target, reference)}


def test_the_committed_judged_list_is_what_the_builder_makes() -> None:
    assert build(SHARED_DATA, 12, 3) == _judged()


def test_the_tuning_list_shares_no_photo_with_the_judged_one() -> None:
    judged = _judged()
    tuning = build_tuning(SHARED_DATA, JUDGED, [77, 78, 79, 80], 6, 90)
    assert len(tuning) == 90
    assert not _photos(tuning) & _photos(judged)
    assert max(Counter(target for target, _, _ in tuning).values()) == 1  # one pair per target
    assert all(
        t.startswith("colour-photos/val/") and r.startswith("colour-photos/val/") for t, r, _ in tuning
    )
    assert all(target != reference for target, reference, _ in tuning)
    assert tuning == build_tuning(SHARED_DATA, JUDGED, [77, 78, 79, 80], 6, 90)  # deterministic


def test_the_tuning_mode_refuses_to_overwrite_the_judged_list() -> None:
    before = JUDGED.read_bytes()
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "reference_pairs.py"),
            "--data",
            str(SHARED_DATA),
            "--tuning",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--tuning needs its own --out" in done.stderr
    assert JUDGED.read_bytes() == before
