"""Per-condition intervals count a participant's answers as one draw, and "≈ N more participants" uses the t
quantile of the projected total (README, "User study"): the audit's examples, the one-answer-each case that
must give the figures of before, and the summary export and results page that show both counts."""

from __future__ import annotations

import csv
import io
import math
from collections import defaultdict

import numpy as np
import pytest

from backend.study import stats
from backend.study.models import Study, StudyPhoto
from backend.study.results import TrialRow, summarize
from tests.backend.study.conftest import login


def _row(pid: str, part: int, photo: str, cond: str, response: str | None, rating: int | None) -> TrialRow:
    return TrialRow(pid, part, photo, cond, False, None, response, rating, 1000, True)


def _per_answer_bootstrap(ratings: list[int]) -> tuple[float, float]:
    """The rating interval as it was: a bootstrap of the ratings as independent draws."""
    values = np.arange(1, 5, dtype=np.float64)
    counts = np.bincount(np.asarray(ratings) - 1, minlength=4)
    draws = np.random.default_rng(0).multinomial(len(ratings), counts / len(ratings), size=4000)
    low, high = np.quantile(draws @ values / len(ratings), [0.025, 0.975])
    return float(low), float(high)


def test_audit_study_intervals_count_each_participant_once() -> None:
    """10 photos, cnn, 10 + 10 trials; 6 participants call every image real and give 4 stars, 6 call every
    image fake and give 1 star. Per answer (60 answers) the intervals were 37.7-62.3% and 2.10-2.90; with
    each participant one draw, a bootstrap over participants gives 25-75% and 1.75-3.25."""
    study = Study(slug="s", title="t", methods=["cnn"], status="open")
    photos = [StudyPhoto(id=f"p{i}", name=f"{i}.jpg", position=i) for i in range(10)]
    rows = []
    for person in range(12):
        believer = person < 6
        for part in (1, 2):
            for i in range(10):
                cond = "real" if (i + person) % 2 else "cnn"
                response = ("real" if believer else "fake") if part == 1 else None
                rating = (4 if believer else 1) if part == 2 else None
                rows.append(_row(f"u{person}", part, f"p{i}", cond, response, rating))
    summary = summarize(study, rows, [(f"u{i}", True, True) for i in range(12)], photos)
    cnn = summary["conditions"][1]["part1"]
    assert (cnn["n"], cnn["participants"], cnn["judged_real"], cnn["share_real"]) == (60, 12, 30, 0.5)
    # residuals ±2.5 each: clustered 12/11 × 75 = 81.818; independent 60/59 × 60 × .25 = 15.254; design
    # effect 5.3636, so Wilson on 11.186 answers: .5 ± .2528
    assert cnn["design_effect"] == pytest.approx(5.3636, abs=1e-4)
    assert cnn["low"] == pytest.approx(0.2472, abs=1e-4) and cnn["high"] == pytest.approx(0.7528, abs=1e-4)
    per_answer = stats.wilson(30, 60)
    assert per_answer.low == pytest.approx(0.377, abs=1e-3)  # what the page said
    # the share among 12 resampled participants is B/12, B ~ Binomial(12, 1/2): 2.5% and 97.5% at 3/12, 9/12
    assert cnn["low"] == pytest.approx(0.25, abs=0.01) and cnn["high"] == pytest.approx(0.75, abs=0.01)
    stars = summary["conditions"][1]["part2"]
    assert (stars["n"], stars["participants"], stars["mean"]) == (60, 12, 2.5)
    assert _per_answer_bootstrap([4] * 30 + [1] * 30) == pytest.approx((2.10, 2.90), abs=0.01)
    # resampled means 1 + 3 × B/12: the same quantiles, 1.75 and 3.25
    assert (stars["low"], stars["high"]) == pytest.approx((1.75, 3.25), abs=1e-9)
    assert "clustered by participant" in summary["intervals"]


def test_one_answer_each_gives_the_intervals_of_before() -> None:
    """When each participant answers a condition once, the answers are the draws: the share's interval is
    Wilson's on the answers and the rating's the bootstrap of the ratings, draw for draw."""
    for k, n in [(0, 2), (1, 2), (3, 4), (7, 20), (13, 13), (41, 97)]:
        share = stats.clustered_share([1] * k + [0] * (n - k), [1] * n)
        before = stats.wilson(k, n)
        assert share.design_effect == pytest.approx(1.0, abs=1e-12) and share.participants == n
        assert (share.low, share.high) == pytest.approx((before.low, before.high), rel=1e-12, abs=1e-15)
    rng = np.random.default_rng(3)
    for ratings in ([1, 4], [4, 4, 3], [1, 1, 2], [2, 3] * 50, list(rng.integers(1, 5, 237))):
        ratings = [int(r) for r in ratings]
        assert stats.rating_interval(ratings, [1] * len(ratings)) == _per_answer_bootstrap(ratings)
    # participants with no answers in the condition change nothing
    assert stats.clustered_share([1, 0, 0], [1, 1, 0]) == stats.clustered_share([1, 0], [1, 1])
    assert stats.rating_interval([4, 3, 0], [1, 1, 0]) == stats.rating_interval([4, 3], [1, 1])


def test_no_interval_from_one_participant_and_none_narrower_than_per_answer() -> None:
    alone = stats.clustered_share([3], [5])
    assert (alone.p, alone.low, alone.high, alone.participants) == (0.6, None, None, 1)
    assert stats.rating_interval([14], [5]) == (None, None)
    # participants who each judge half real (no spread between them) are no evidence of answers better
    # than independent ones: the interval is Wilson's on the answers, not zero-wide
    even = stats.clustered_share([2, 2, 2], [4, 4, 4])
    assert even.design_effect == 1.0 and (even.low, even.high) == pytest.approx(
        (stats.wilson(6, 12).low, stats.wilson(6, 12).high)
    )
    with pytest.raises(ValueError):
        stats.clustered_share([3], [2])
    with pytest.raises(ValueError):
        stats.rating_interval([9], [2])  # 9 stars from two ratings of at most 4


def test_clustered_intervals_agree_with_a_bootstrap_over_participants() -> None:
    """300 participants with a lean of their own, 1-6 answers each: both intervals match a percentile
    bootstrap that resamples participants with their answers."""
    rng = np.random.default_rng(11)
    people = 300
    lean = rng.normal(0.0, 1.2, people)
    answers = rng.integers(1, 7, people).astype(float)
    hits = np.array(
        [(rng.random(int(m)) < 1 / (1 + np.exp(-0.4 - x))).sum() for m, x in zip(answers, lean, strict=True)]
    )
    stars = np.array(
        [
            np.clip(np.rint(2.5 + x + rng.normal(0, 0.7, int(m))), 1, 4).sum()
            for m, x in zip(answers, lean, strict=True)
        ]
    )
    picks = np.random.default_rng(0).integers(0, people, size=(4000, people))
    share_draws = hits[picks].sum(1) / answers[picks].sum(1)
    rating_draws = stars[picks].sum(1) / answers[picks].sum(1)
    share = stats.clustered_share(hits, answers)
    assert share.design_effect > 1.5  # the lean makes a participant's answers alike
    low, high = np.quantile(share_draws, [0.025, 0.975])
    assert share.low == pytest.approx(low, abs=0.01) and share.high == pytest.approx(high, abs=0.01)
    low, high = np.quantile(rating_draws, [0.025, 0.975])
    found = stats.rating_interval(stars, answers)
    assert found == pytest.approx((low, high), abs=0.02)
    naive = stats.rating_interval(
        [int(v) for m, s in zip(answers, stars, strict=True) for v in _spread(int(s), int(m))], None
    )
    assert found[1] - found[0] > 1.5 * (naive[1] - naive[0])  # per answer it was far too narrow


def _spread(total: int, count: int) -> list[int]:
    """``count`` ratings of 1-4 that sum to ``total`` (any will do: the per-answer bootstrap needs values)."""
    base, extra = divmod(total, count)
    return [base + (i < extra) for i in range(count)]


def test_more_participants_uses_the_t_quantile_of_the_projected_total() -> None:
    """The audit's case: 6 participants, three conditions (simultaneous intervals, each at 1 − 0.05/3),
    A − B per participant −1, −1, 0, 2, 3, 3 stars: difference 1, SE .774597. With the difference and each
    participant's spread held, the interval leaves out 0 at 25 participants: 19 more. Today's t (5 df) for
    every total said 39."""
    a, b, c = [1, 1, 2, 3, 4, 4], [2, 2, 2, 1, 1, 1], [2, 3, 2, 3, 2, 3]
    sums = np.array([a, b, c], dtype=np.float64).T
    pairs = [(0, 1), (0, 2), (1, 2)]
    d = stats.ratio_differences(sums, np.ones_like(sums), pairs, bounds=(-3.0, 3.0))[0]
    assert (d.estimate, d.participants, d.excludes_zero) == (1.0, 6, False)
    assert d.standard_error == pytest.approx(math.sqrt(0.6)) and d.tail == pytest.approx(0.05 / 3 / 2)
    assert d.more_participants() == 19

    def projected_half(total: int) -> float:
        return stats.t_quantile(1 - 0.05 / 6, total - 1) * math.sqrt(0.6) * math.sqrt(6 / total)

    assert projected_half(6 + 19) < 1.0 <= projected_half(6 + 18)
    old = math.ceil(6 * (stats.t_quantile(1 - 0.05 / 6, 5) * math.sqrt(0.6)) ** 2) - 6
    assert old == 39
    # a gap of rounding residue is no difference: nothing to tell (not an astronomical count)
    tiny = stats.Difference(1e-15, -0.5, 0.5, 6, 0.2, 0.025)
    assert tiny.more_participants() is None
    # a small real gap with many participants: the normal limit, found without stepping through every total
    far = stats.Difference(0.001, -0.05, 0.052, 2_000_000, 0.026, 0.025)
    needed = far.more_participants()
    normal_limit = 2_000_000 * (1.959964 * 0.026 / 0.001) ** 2 - 2_000_000
    assert needed == pytest.approx(normal_limit, rel=1e-5)


def test_summary_export_and_results_page_show_answers_and_participants(app_client, make_study) -> None:
    slug = make_study(photos=4, methods=("cnn",), trials=(4, 4))
    c = app_client
    for person in range(4):
        believer = person % 2 == 0
        c.cookies.clear()
        assert c.post(f"/study/{slug}/api/start", json={"participant": f"p{person}"}).status_code == 200
        state = c.post(f"/study/{slug}/api/begin", json={}).json()
        while state["phase"] in ("part1", "part2"):
            t = state["trial"]
            body: dict[str, object] = {"trial_id": t["id"], "response_ms": 900}
            if t["part"] == 1:
                body["response"] = "real" if believer else "fake"
            else:
                body["rating"] = 4 if believer else 1
            state = c.post(f"/study/{slug}/api/answer", json=body).json()
    c.cookies.clear()
    login(c)

    trials = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/trials.csv").text)))
    hits: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0.0])
    for t in trials:
        key = (t["condition"], t["participant"])
        if t["part"] == "1":
            hits[key][0] += t["response"] == "real"
            hits[key][1] += 1
        else:
            totals[key][0] += int(t["rating"])
            totals[key][1] += 1
    summary = list(csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/summary.csv").text)))
    page = c.get(f"/admin/studies/{slug}").text
    for row in summary:
        cond = row["condition"]
        mine = [v for (k, _), v in hits.items() if k == cond]
        share = stats.clustered_share([h for h, _ in mine], [m for _, m in mine])
        assert int(row["part1_n"]) == share.n and int(row["part1_participants"]) == share.participants == 4
        assert float(row["share_real_low"]) == pytest.approx(share.low)
        assert float(row["share_real_design_effect"]) == pytest.approx(share.design_effect)
        # believers and doubters answer alike throughout: wider than Wilson on the answers as independent
        assert share.design_effect > 1 and share.low < stats.wilson(share.k, share.n).low
        rated = [v for (k, _), v in totals.items() if k == cond]
        low, high = stats.rating_interval([s for s, _ in rated], [m for _, m in rated])
        assert (float(row["rating_low"]), float(row["rating_high"])) == pytest.approx((low, high))
        assert int(row["part2_participants"]) == 4
        assert f'{share.n} <span class="muted">(4)</span>' in page  # answers (people)
        assert f'{row["part2_n"]} <span class="muted">(4)</span>' in page
    assert "clustered by participant" in page
    codebook = {
        r["column"]: r["meaning"]
        for r in csv.DictReader(io.StringIO(c.get(f"/admin/studies/{slug}/export/codebook.csv").text))
        if r["file"] == "summary.csv"
    }
    assert "clustered by participant" in codebook["share_real_low"]
    assert "clustered by participant" in codebook["rating_low"]
    assert {"part1_participants", "part2_participants", "share_real_design_effect"} <= set(codebook)
