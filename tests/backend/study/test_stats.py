"""Statistics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backend.study import stats
from backend.study.models import Study, StudyPhoto
from backend.study.results import TrialRow, summarize


def test_wilson_interval_matches_hand_computation() -> None:
    # k = 8 of n = 20, z = 1.96: p = 0.4; denom = 1 + 3.8416/20 = 1.19208;
    # centre = (0.4 + 3.8416/40) / 1.19208 = 0.41611; half = 1.96 * sqrt(0.012 + 0.002401) / 1.19208 = 0.19731
    w = stats.wilson(8, 20)
    assert w.p == 0.4
    assert w.low == pytest.approx(0.21881, abs=2e-5) and w.high == pytest.approx(0.61342, abs=2e-5)
    assert stats.wilson(5, 10).low == pytest.approx(0.23659, abs=1e-5)  # symmetric around 0.5
    zero = stats.wilson(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(0.27753, abs=1e-5)
    full = stats.wilson(10, 10)
    assert full.high == 1.0 and full.low == pytest.approx(1 - 0.27753, abs=1e-5)
    assert stats.wilson(0, 0).p is None
    with pytest.raises(ValueError):
        stats.wilson(3, 2)


def test_t_quantiles_and_mean_interval() -> None:
    for df, t in [(1, 12.7062), (3, 3.18245), (9, 2.26216), (30, 2.04227), (200, 1.97190)]:
        assert stats.t_quantile(0.975, df) == pytest.approx(t, abs=1e-4)
    assert stats.t_quantile(0.025, 5) == pytest.approx(-2.57058, abs=1e-4)
    # ratings 1, 2, 3, 4: mean 2.5, s = sqrt(5/3) = 1.29099, half = 3.18245 * 1.29099 / 2 = 2.05426
    m = stats.mean_ci([1, 2, 3, 4])
    assert m.mean == 2.5 and m.sd == pytest.approx(math.sqrt(5 / 3))
    assert m.low == pytest.approx(0.44574, abs=1e-4) and m.high == pytest.approx(4.55426, abs=1e-4)
    assert stats.mean_ci([3]).low is None and stats.mean_ci([]).mean is None
    assert stats.median([5, 1, 3]) == 3 and stats.median([4, 1, 3, 2]) == 2.5
    assert stats.percentile([1, 2, 3, 4, 5], 99) == pytest.approx(4.96)


def _row(pid, part, photo, cond, response=None, rating=None, ms=1000, attention=False, expected=None):  # type: ignore[no-untyped-def]
    return TrialRow(pid, part, photo, cond, attention, expected, response, rating, ms, True)


def test_summary_per_condition_and_photo() -> None:
    study = Study(slug="s", title="t", methods=["cnn"], status="open")
    photos = [StudyPhoto(id="p1", name="a.jpg", position=0), StudyPhoto(id="p2", name="b.jpg", position=1)]
    rows = [
        # part 1: real judged real 3 of 4; cnn judged real 1 of 4
        _row("u1", 1, "p1", "real", "real", ms=800),
        _row("u2", 1, "p1", "real", "real", ms=1200),
        _row("u3", 1, "p2", "real", "fake", ms=1000),
        _row("u4", 1, "p2", "real", "real", ms=3000),
        _row("u1", 1, "p2", "cnn", "fake"),
        _row("u2", 1, "p2", "cnn", "real"),
        _row("u3", 1, "p1", "cnn", "fake"),
        _row("u4", 1, "p1", "cnn", "fake"),
        # part 2: real ratings 4, 4, 3; cnn ratings 2, 3
        _row("u1", 2, "p1", "real", rating=4),
        _row("u2", 2, "p2", "real", rating=4),
        _row("u3", 2, "p1", "real", rating=3),
        _row("u1", 2, "p2", "cnn", rating=2),
        _row("u2", 2, "p1", "cnn", rating=3),
        # attention checks (never counted): u4 fails one
        _row("u1", 1, "p1", "attention", "fake", attention=True, expected="fake"),
        _row("u4", 1, "p1", "attention", "real", attention=True, expected="fake"),
    ]
    participants = [("u1", True, True), ("u2", True, True), ("u3", True, False), ("u4", True, False)]
    s = summarize(study, rows, participants, photos)
    real, cnn = s["conditions"]
    assert real["condition"] == "real" and real["part1"]["n"] == 4 and real["part1"]["judged_real"] == 3
    assert real["part1"]["low"] == pytest.approx(stats.wilson(3, 4).low)
    assert cnn["part1"]["share_real"] == 0.25 and cnn["part1"]["share_correct"] == 0.75
    assert real["part2"]["mean"] == pytest.approx(11 / 3) and real["part2"]["distribution"] == {
        "1": 0,
        "2": 0,
        "3": 1,
        "4": 2,
    }
    # bootstrap of (4, 4, 3): resampled means lie in {3, 10/3, 11/3, 4}; P(all 3) = 1/27 and P(all 4) = 8/27,
    # both over 2.5%, so the interval is the whole 3..4 (a t interval would reach 5.1)
    assert real["part2"]["low"] == 3.0 and real["part2"]["high"] == 4.0
    assert real["part2"]["sd"] == pytest.approx(0.57735, abs=1e-5)
    assert cnn["part2"]["mean"] == 2.5
    assert real["median_response_ms"] == 1000  # 800, 1000, 1000, 1000, 1000, 1200, 3000
    assert s["participants"] == {
        "total": 4,
        "started": 4,
        "completed": 2,
        "completion_rate": 0.5,
        "failed_attention": 1,
        "excluded": 0,
        "failed_attention_excluded": False,
        "marked": 0,
    }
    assert s["answers"] == {"part1": 8, "part2": 5, "attention": 2}
    (versus,) = s["comparisons"]  # two conditions: one pair, the real photos first
    assert (versus["a"], versus["b"], versus["a_label"]) == ("real", "cnn", "Real photo")
    assert versus["share_real"]["difference"] == pytest.approx(0.75 - 0.25)
    assert versus["rating"]["difference"] == pytest.approx(11 / 3 - 2.5)
    assert versus["share_real"]["low"] < 0.5 < versus["share_real"]["high"] <= 1.0
    assert isinstance(versus["rating"]["differs"], bool) and "cluster-robust" in s["comparison_intervals"]
    p1 = s["photos"][0]["conditions"]
    assert p1["real"]["n1"] == 2 and p1["real"]["share_real"] == 1.0 and p1["cnn"]["mean_rating"] == 3.0
    excluded = summarize(study, rows, participants, photos, exclude_failed_attention=True)
    assert excluded["conditions"][0]["part1"]["n"] == 3 and excluded["participants"]["total"] == 3
    assert excluded["participants"]["failed_attention_excluded"] is True
    # every answer count leaves out the same participants (u4: two part-1 answers and one check)
    assert excluded["answers"] == {"part1": 6, "part2": 5, "attention": 1}


def test_rating_interval_stays_on_the_scale() -> None:
    # the t interval of ratings 1 and 4 is -16.56..21.56; the bootstrap one is within 1..4
    t = stats.mean_ci([1, 4])
    assert t.low == pytest.approx(-16.56, abs=0.01) and t.high == pytest.approx(21.56, abs=0.01)
    assert stats.rating_interval([1, 4]) == (1.0, 4.0)
    for ratings in ([1, 1, 2], [4, 4, 4, 3], [1, 2, 3, 4] * 3, [2, 3] * 50):
        low, high = stats.rating_interval(ratings)
        mean = sum(ratings) / len(ratings)
        assert 1.0 <= low <= mean <= high <= 4.0, (ratings, low, high)
    low, high = stats.rating_interval([2, 3] * 50)  # large n: close to the normal interval 2.5 ± 0.098
    assert low == pytest.approx(2.5 - 0.098, abs=0.02) and high == pytest.approx(2.5 + 0.098, abs=0.02)
    assert stats.rating_interval([3]) == (None, None) and stats.rating_interval([4, 4]) == (4.0, 4.0)


def test_difference_of_shares_matches_hand_computation() -> None:
    # u1: A 2 of 2 real, B 0 of 1; u2: A 1 of 1, B 1 of 2; u3: A 0 of 1, B 0 of 1. A 3/4, B 1/4: 0.5.
    # pulls (s − r·n)/N on A: .125, .0625, −.1875; on B: −.0625, .125, −.0625; their differences .1875,
    # −.0625, −.125: Σ² = .0546875, × 3/2 = .08203125, √ = .286411; t(0.975, 2) = 4.302653: half 1.232330
    sums = [[2, 0], [1, 1], [0, 0]]
    counts = [[2, 1], [1, 2], [1, 1]]
    (d,) = stats.ratio_differences(sums, counts, [(0, 1)], bounds=(-1.0, 1.0))
    assert d.estimate == pytest.approx(0.5)
    assert d.low == pytest.approx(0.5 - 1.232330, abs=1e-5) and d.high == 1.0  # clipped to what can be
    assert not d.excludes_zero
    # if the difference and each participant's spread held, the half-width at T participants would be
    # t(0.975, T − 1) × .286411 × √(3/T): at 6, 2.570582 × .286411 × .707107 = .5206 (not below .5); at 7,
    # 2.446912 × .286411 × .654654 = .4588: 4 more (today's t on 2 df for every T said 16)
    assert d.participants == 3 and d.more_participants() == 4
    # a participant with no answers in this part (only the other part's) changes nothing
    assert stats.ratio_differences([*sums, [0, 0]], [*counts, [0, 0]], [(0, 1)], bounds=(-1.0, 1.0)) == [d]
    (wide,) = stats.ratio_differences(sums, counts, [(0, 1)])
    assert wide.high == pytest.approx(0.5 + 1.232330, abs=1e-5)
    # three pairs: each interval at 1 − 0.05/3, so wider than the same pair alone
    three = stats.ratio_differences(
        [[*r, 1] for r in sums], [[*r, 1] for r in counts], [(0, 1), (0, 2), (1, 2)]
    )
    assert three[0].estimate == d.estimate and three[0].low < wide.low
    # a condition nobody answered, or a single participant: no interval
    assert stats.ratio_differences([[1, 0]], [[1, 0]], [(0, 1)])[0] == stats.Difference(None, None, None)
    alone = stats.ratio_differences([[1, 0]], [[2, 1]], [(0, 1)])[0]
    assert (alone.estimate, alone.low, alone.more_participants()) == (0.5, None, None)
    same = stats.ratio_differences([[1, 1], [0, 0]], [[2, 2], [1, 1]], [(0, 1)])[0]
    assert same.estimate == 0 and same.more_participants() is None  # no difference so far: nothing to tell


def test_difference_interval_agrees_with_a_bootstrap_over_participants() -> None:
    """400 participants who each lean to "real" or "fake" (a participant effect), 5 answers each over three
    conditions: the intervals match a percentile bootstrap that resamples participants with their answers."""
    rng = np.random.default_rng(5)
    people, shares = 400, [0.8, 0.55, 0.3]
    lean = rng.normal(0.0, 1.0, people)
    sums, counts = np.zeros((people, 3)), np.zeros((people, 3))
    for i in range(people):
        for c in rng.integers(0, 3, 5):
            odds = np.log(shares[c] / (1 - shares[c])) + lean[i]
            counts[i, c] += 1
            sums[i, c] += rng.random() < 1 / (1 + np.exp(-odds))
    pairs = [(0, 1), (0, 2), (1, 2)]
    found = stats.ratio_differences(sums, counts, pairs, bounds=(-1.0, 1.0))
    tail = 0.05 / len(pairs) / 2
    picks = np.random.default_rng(0).integers(0, people, size=(4000, people))
    resampled = sums[picks].sum(1) / counts[picks].sum(1)
    for (a, b), d in zip(pairs, found, strict=True):
        low, high = np.quantile(resampled[:, a] - resampled[:, b], [tail, 1 - tail])
        assert d.low == pytest.approx(low, abs=0.012) and d.high == pytest.approx(high, abs=0.012)
        assert d.excludes_zero and d.more_participants() == 0  # 25 points apart with 400 people: settled


def test_no_interval_where_the_participants_answers_leave_no_spread() -> None:
    """Two participants whose answers shift alike between two conditions (3 and 2 of 4 judged real on A, 2
    and 1 on B) give a sandwich variance of 0: a zero-width interval round a 0.25 difference, "differs", from
    two people. Under no difference at all that happened to 15-28% of two-participant studies (simulated): a
    zero spread is no evidence, so there is no interval (as with one participant)."""
    sums, counts = [[3, 2], [2, 1]], [[4, 4], [4, 4]]
    (d,) = stats.ratio_differences(sums, counts, [(0, 1)], bounds=(-1.0, 1.0))
    assert d.estimate == pytest.approx(0.25)
    assert (d.low, d.high, d.excludes_zero, d.more_participants()) == (None, None, False, None)
    # the same with rounding residue (shares of thirds): still no interval
    (d,) = stats.ratio_differences([[2, 1], [1, 0], [1, 0]], [[3, 3], [3, 3], [3, 3]], [(0, 1)])
    assert d.estimate == pytest.approx(1 / 3) and d.low is None and not d.excludes_zero
    # every answer alike: nothing to estimate a spread from either
    (same,) = stats.ratio_differences([[4, 4], [4, 4]], [[1, 1], [1, 1]], [(0, 1)], bounds=(-3.0, 3.0))
    assert (same.estimate, same.low, same.high) == (0.0, None, None)
