"""The pair lists that judge reference-guided colorization: the judged list and a disjoint tuning list."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections import Counter

from tests.conftest import ROOT, SHARED_DATA

sys.path.insert(0, str(ROOT / "benchmarks"))
from reference_pairs import build, build_tuning

JUDGED = ROOT / "benchmarks" / "reference_pairs.csv"


def _photos(pairs: list[tuple[str, str, str]]) -> set[str]:
    return {photo for target, reference, _ in pairs for photo in (target, reference)}


def test_the_committed_judged_list_is_what_the_builder_makes() -> None:
    with JUDGED.open(newline="") as fh:
        committed = [(r["target"], r["reference"], r["group"]) for r in csv.DictReader(fh)]
    assert build(SHARED_DATA, 12, 3) == committed


def test_the_tuning_list_shares_no_photo_with_the_judged_one() -> None:
    with JUDGED.open(newline="") as fh:
        judged = [(r["target"], r["reference"], r["group"]) for r in csv.DictReader(fh)]
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
