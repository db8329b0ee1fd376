"""Statistics for the study results: Wilson score interval for proportions, bootstrap interval for ratings.

No scipy. The share "judged real" uses the Wilson score interval with z = 1.959964 (95%). The mean rating
uses a 95% percentile bootstrap interval (RATING_RESAMPLES resamples of the ratings, fixed seed so a page
shows the same figures on every refresh): every resampled mean lies between the smallest and the largest
rating given, so the interval never leaves the 1–4 scale (a Student t interval, ``mean_ci``, does for small n:
e.g. ratings 1 and 4 give −16.56–21.56).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    low = 0.0 if k == 0 else max(0.0, centre - half)  # exact at the edges (no rounding residue)
    high = 1.0 if k == n else min(1.0, centre + half)
    return Proportion(k, n, p, low, high)


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


RATING_RESAMPLES = 4000
RATING_INTERVAL = "95% percentile bootstrap interval (4,000 resamples), within the 1–4 scale"


def rating_interval(
    ratings: Sequence[int],
    level: float = 0.95,
    scale: tuple[int, int] = (1, 4),
    resamples: int = RATING_RESAMPLES,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the mean of integer ratings (None for fewer than 2 ratings). Resamples
    the rating counts (multinomial), so it costs the same for 10 or 100,000 ratings."""
    n = len(ratings)
    if n < 2:
        return None, None
    low_value, high_value = scale
    values = np.arange(low_value, high_value + 1, dtype=np.float64)
    counts = np.bincount(np.asarray(ratings, dtype=np.int64) - low_value, minlength=len(values))
    if counts.size != values.size:
        raise ValueError(f"ratings must lie within {low_value}..{high_value}")
    draws = np.random.default_rng(0).multinomial(n, counts / n, size=resamples)
    means = draws @ values / n
    low, high = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
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
    half_width: float | None = None  # of the interval before it was clipped to what a difference can be

    @property
    def excludes_zero(self) -> bool:
        return self.low is not None and self.high is not None and (self.low > 0 or self.high < 0)

    def more_participants(self) -> int | None:
        """About how many more participants would make the interval leave out 0 if the difference so far
        held (an interval narrows as 1/√participants): 0 when it already does; None when it cannot be said
        (no interval, or no difference so far). Early differences tend to shrink, so read it as a floor."""
        if self.excludes_zero:
            return 0
        if self.estimate is None or self.half_width is None or self.estimate == 0:  # no interval: < 2 people
            return None
        needed = self.participants * (self.half_width / abs(self.estimate)) ** 2
        return max(1, math.ceil(needed) - self.participants)


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
        out.append(Difference(estimate, low, high, people, half))
    return out
