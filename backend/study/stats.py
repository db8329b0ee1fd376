"""Statistics for the study results: intervals per condition and for differences between conditions.

No scipy. A participant's answers are not independent draws (one who calls most photos real does so for every
photo), so every interval here counts a participant's answers as one draw; treated as separate draws, 60
answers from 12 participants who each answered alike gave an interval half as wide as it should be.

The share "judged real" (``clustered_share``) uses the Wilson score interval with z = 1.959964 (95%) on the
effective number of answers: the answers divided by the design effect, the cluster-robust variance of the
share over the variance it would have if every answer were independent (at least 1). When each participant
answers once that is 1, and the interval is Wilson's on the answers. The mean rating (``rating_interval``)
uses a 95% percentile bootstrap interval that resamples participants with all their ratings
(RATING_RESAMPLES resamples, fixed seed so a page shows the same figures on every refresh): every resampled
mean lies between the smallest and the largest rating given, so the interval never leaves the 1–4 scale (a
Student t interval, ``mean_ci``, does for small n: e.g. ratings 1 and 4 give −16.56–21.56). Neither gives an
interval from fewer than two participants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Proportion:
    k: int
    n: int
    p: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class ClusteredProportion:
    """k of n answers from ``participants`` people, with an interval that counts a participant's answers as
    one draw: Wilson's on n / design_effect answers."""

    k: int
    n: int
    participants: int
    p: float | None
    low: float | None
    high: float | None
    design_effect: float | None


@dataclass(frozen=True)
class MeanCI:
    n: int
    mean: float | None
    sd: float | None
    low: float | None
    high: float | None


def wilson(k: int, n: int, z: float = Z95) -> Proportion:
    """Wilson score interval for k successes out of n (None when n is 0)."""
    if n <= 0:
        return Proportion(k, n, None, None, None)
    if not 0 <= k <= n:
        raise ValueError(f"k={k} is not within 0..n={n}")
    p = k / n
    low, high = _wilson_bounds(p, n, z)
    low = 0.0 if k == 0 else low  # exact at the edges (no rounding residue)
    high = 1.0 if k == n else high
    return Proportion(k, n, p, low, high)


def _wilson_bounds(p: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of a share p over n answers (n need not be whole: an effective number)."""
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def clustered_share(
    hits: Sequence[float] | np.ndarray, answers: Sequence[float] | np.ndarray, z: float = Z95
) -> ClusteredProportion:
    """The share of answers that were hits (judged real), from each participant's hits and answers, with a
    Wilson interval on the effective number of answers (module docstring). The design effect is the
    cluster-robust (sandwich) variance of the ratio estimator Σhits / Σanswers — each participant's
    residuals summed before squaring, × participants / (participants − 1) — over the same variance with
    every answer its own participant (× answers / (answers − 1)), so it is exactly 1 when each participant
    answered once. It is never below 1 (a smaller one, from participants whose shares agree more than chance
    would have them, is no evidence of answers more informative than independent ones) and is 1 where every
    answer is the same (no spread to estimate it from). No interval with fewer than two participants."""
    hit_counts, answer_counts = np.asarray(hits, dtype=np.float64), np.asarray(answers, dtype=np.float64)
    if hit_counts.shape != answer_counts.shape:
        raise ValueError("hits and answers need one entry per participant")
    answered = answer_counts > 0
    hit_counts, answer_counts = hit_counts[answered], answer_counts[answered]
    if ((hit_counts < 0) | (hit_counts > answer_counts)).any():
        raise ValueError("a participant's hits must lie within 0..their answers")
    people = int(answered.sum())
    k, n = round(float(hit_counts.sum())), round(float(answer_counts.sum()))
    if n == 0:
        return ClusteredProportion(0, 0, 0, None, None, None, None)
    p = k / n
    if people < 2:
        return ClusteredProportion(k, n, people, p, None, None, None)
    design_effect = 1.0
    if 0 < k < n:
        residuals = hit_counts - p * answer_counts
        clustered = people / (people - 1) * float(residuals @ residuals)
        independent = n / (n - 1) * n * p * (1 - p)
        design_effect = max(1.0, clustered / independent)
    low, high = _wilson_bounds(p, n / design_effect, z)
    low = 0.0 if k == 0 else low
    high = 1.0 if k == n else high
    return ClusteredProportion(k, n, people, p, low, high, design_effect)


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


def t_quantile(q: float, df: float) -> float:
    """Quantile of Student's t distribution (bisection on the CDF; |error| < 1e-10)."""
    if not 0.0 < q < 1.0 or df <= 0:
        raise ValueError("need 0 < q < 1 and df > 0")
    if q < 0.5:
        return -t_quantile(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < q:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def mean_ci(values: Sequence[float], level: float = 0.95) -> MeanCI:
    """Mean with its Student t confidence interval (no interval for fewer than 2 values)."""
    n = len(values)
    if n == 0:
        return MeanCI(0, None, None, None, None)
    mean = sum(values) / n
    if n == 1:
        return MeanCI(1, mean, None, None, None)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    return MeanCI(n, mean, sd, mean - half, mean + half)


SHARE_INTERVAL = (
    "95% Wilson score interval clustered by participant (on the answers divided by the design effect of "
    "a participant's answers counting as one draw)"
)
RATING_RESAMPLES = 4000
RATING_INTERVAL = (
    f"95% percentile bootstrap interval clustered by participant ({RATING_RESAMPLES:,} resamples of the "
    "participants with all their ratings), within the 1–4 scale"
)
BOOTSTRAP_CELLS = 1_000_000  # resampled counts held at once (8 MB), however many kinds of participant


def rating_interval(
    totals: Sequence[float] | np.ndarray,
    counts: Sequence[float] | np.ndarray | None = None,
    level: float = 0.95,
    scale: tuple[int, int] = (1, 4),
    resamples: int = RATING_RESAMPLES,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean rating Σtotals / Σcounts that resamples participants:
    ``totals`` are each participant's summed stars, ``counts`` how many ratings each gave (default: one
    each, so ``totals`` are the ratings). None for fewer than 2 participants.

    Participants who gave as many ratings with the same total are interchangeable, so it resamples how many
    of each kind there are (multinomial over, for each number of ratings given, every total it allows): it
    costs the same for 10 or 100,000 participants, and with one rating each it is the bootstrap of the
    ratings themselves, draw for draw."""
    stars = np.asarray(totals, dtype=np.float64)
    given = np.ones_like(stars) if counts is None else np.asarray(counts, dtype=np.float64)
    if stars.shape != given.shape:
        raise ValueError("totals and counts need one entry per participant")
    rated = given > 0
    person_stars = np.rint(stars[rated]).astype(np.int64)
    person_ratings = np.rint(given[rated]).astype(np.int64)
    low_value, high_value = scale
    if ((person_stars < person_ratings * low_value) | (person_stars > person_ratings * high_value)).any():
        raise ValueError(f"ratings must lie within {low_value}..{high_value}")
    people = int(person_ratings.size)
    if people < 2:
        return None, None
    sizes = np.unique(person_ratings)  # the numbers of ratings participants gave
    widths = sizes * (high_value - low_value) + 1
    starts = np.concatenate(([0], np.cumsum(widths)[:-1]))
    totals_allowed = [np.arange(size * low_value, size * high_value + 1) for size in sizes]
    kind_totals = np.concatenate(totals_allowed).astype(np.float64)
    kind_counts = np.repeat(sizes, widths).astype(np.float64)
    kind = starts[np.searchsorted(sizes, person_ratings)] + person_stars - person_ratings * low_value
    shares = np.bincount(kind, minlength=kind_totals.size) / people
    rng = np.random.default_rng(0)
    batch = max(1, BOOTSTRAP_CELLS // kind_totals.size)
    means = []
    for done in range(0, resamples, batch):
        draws = rng.multinomial(people, shares, size=min(batch, resamples - done))
        means.append(draws @ kind_totals / (draws @ kind_counts))
    low, high = np.quantile(np.concatenate(means), [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(low), float(high)


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2.0


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100), as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


DIFFERENCE_INTERVAL = (
    "95% simultaneous intervals for each measure (Bonferroni over the pairs), cluster-robust: a "
    "participant's answers count as one draw"
)


@dataclass(frozen=True)
class Difference:
    """One condition's figure less another's, with its interval; None where either has no answers (the
    interval also needs at least two participants whose answers do not all move alike)."""

    estimate: float | None
    low: float | None
    high: float | None
    participants: int = 0  # who answered this part
    standard_error: float | None = None  # the cluster-robust one the interval is built on
    tail: float | None = None  # the probability left out on each side (Bonferroni-adjusted)

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def more_participants(self) -> int | None:
        """About how many more participants would make the interval leave out 0 if the difference so far and
        each participant's spread held: the fewest for which t(total − 1) × SE × √(participants / total) <
        |difference| (the standard error narrows as 1/√participants, and the t quantile with the total's
        degrees of freedom; keeping today's t overstated it by a third at 17 participants, 2× at 6). 0 when
        it already does; None when it cannot be said (no interval, or no difference so far). An estimate
        under those assumptions, not a bound: early differences tend to shrink, which would need more."""
        if self.excludes_zero:
            return 0
        if self.estimate is None or self.standard_error is None or self.tail is None:
            return None  # no interval: fewer than 2 people, or no spread
        if abs(self.estimate) <= NO_SPREAD:  # no difference so far (or the rounding residue of none)
            return None
        people, error, gap = self.participants, self.standard_error, abs(self.estimate)
        quantile = 1 - self.tail

        def tells(total: int) -> bool:
            return _t_or_normal_quantile(quantile, total - 1) * error * math.sqrt(people / total) < gap

        # the projected half-width falls as the total grows; the total lies between what the normal
        # quantile (a t quantile's limit) and today's t quantile give
        scale = people * (error / gap) ** 2
        fewest = max(people + 1, math.floor(scale * NormalDist().inv_cdf(quantile) ** 2))
        enough = max(fewest, math.floor(scale * t_quantile(quantile, people - 1) ** 2) + 1)
        while not tells(enough):  # rounding at the bound's edge
            enough += 1
        while fewest < enough:
            middle = (fewest + enough) // 2
            if tells(middle):
                enough = middle
            else:
                fewest = middle + 1
        return enough - people


LARGE_DF = 1e6  # beyond it the t quantile is the normal one to 1e-6 (and t_cdf's df / (df + t²) rounds to 1)


def _t_or_normal_quantile(q: float, df: float) -> float:
    return t_quantile(q, df) if df < LARGE_DF else NormalDist().inv_cdf(q)


# A spread at most this is none: rounding residue (about 1e-17 a participant); one from answers that vary is
# orders of magnitude larger
NO_SPREAD = 1e-12


def ratio_differences(
    sums: np.ndarray,
    counts: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    level: float = 0.95,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> list[Difference]:
    """For each pair (a, b) of columns: Σ sums[:, a] / Σ counts[:, a] less the same for b (a share judged
    real, or a mean rating), with an interval.

    ``sums`` and ``counts`` are (participants, conditions). One participant's answers are not independent (a
    participant who calls most photos real does so for every method), so the variance is the cluster-robust
    (sandwich) one of the linearised ratios — each participant's residuals summed before squaring — with a
    t quantile on participants − 1 degrees of freedom: treating the answers as separate draws would make the
    interval too narrow. It costs O(participants), so the live page stays fast for any study (a bootstrap
    over participants agrees for large studies: tested). The intervals hold together at ``level``
    (Bonferroni: each at 1 − (1 − level)/len(pairs)), so every pair may be read at once; they are clipped to
    ``bounds`` (the range a difference can take).

    Where every participant's answers moved alike between the two conditions (two participants who each
    judged one photo fewer real on B; everyone giving A 4 stars and B 1), the variance comes out 0: that is
    no evidence of how far participants vary, and read as a zero-width interval it said "differs" for 15-28%
    of simulated two-participant studies with no difference at all. Such a pair gets no interval."""
    sums, counts = np.asarray(sums, dtype=np.float64), np.asarray(counts, dtype=np.float64)
    people = int((counts.sum(1) > 0).sum())  # those who answered this part
    totals = counts.sum(0)
    ratios = np.divide(sums.sum(0), totals, out=np.full(totals.shape, np.nan), where=totals > 0)
    # each participant's pull on each ratio: (their sum − ratio × their count) / the condition's total
    pull = np.divide(
        sums - ratios * counts, totals, out=np.zeros_like(sums), where=(totals > 0) & np.isfinite(ratios)
    )
    tail = (1 - level) / max(len(pairs), 1) / 2
    t = t_quantile(1 - tail, people - 1) if people >= 2 else math.nan
    out = []
    for a, b in pairs:
        if totals[a] == 0 or totals[b] == 0:
            out.append(Difference(None, None, None))
            continue
        estimate = float(ratios[a] - ratios[b])
        if people < 2:
            out.append(Difference(estimate, None, None, people))
            continue
        per_person = pull[:, a] - pull[:, b]
        spread = math.sqrt(people / (people - 1) * float(per_person @ per_person))
        if spread <= NO_SPREAD:  # the participants' answers moved alike: no evidence of how far they vary
            out.append(Difference(estimate, None, None, people))
            continue
        half = t * spread
        low, high = max(estimate - half, bounds[0]), min(estimate + half, bounds[1])
        out.append(Difference(estimate, low, high, people, spread, tail))
    return out
