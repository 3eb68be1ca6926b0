"""Small, dependency-free statistics used by the analysis layer.

Wilson score intervals for proportions, an exact McNemar test for paired
binary outcomes, a cluster bootstrap for paired differences, and histogram
bins.  Everything here is pure and deterministic (bootstraps take a seed).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from statistics import NormalDist


def format_percent(k: int, n: int) -> str:
    """``k/n`` as a percent, rounded half up from the exact fraction (12.5% stays 12.5%,
    never "12%"), with one decimal below 1,000 samples (where one sample moves the rate by
    0.1% or more) and none from 1,000 up.  The one rounding rule every surface uses."""
    if not n:
        return "–"
    places = Decimal("0.1") if n < 1000 else Decimal("1")
    value = (Decimal(100 * k) / Decimal(n)).quantize(places, rounding=ROUND_HALF_UP)
    return f"{value}%"


def format_bound(x: float, n: int) -> str:
    """An interval bound with the decimals ``format_percent`` uses for the same n."""
    places = Decimal("0.1") if n < 1000 else Decimal("1")
    return f"{Decimal(repr(100 * x)).quantize(places, rounding=ROUND_HALF_UP)}%"


@dataclass(frozen=True)
class Rate:
    """``k`` successes out of ``n`` with a Wilson interval; ``rate`` is None when n == 0."""

    k: int
    n: int
    low: float
    high: float
    confidence: float = 0.95

    @property
    def rate(self) -> float | None:
        return self.k / self.n if self.n else None

    def contains(self, p: float) -> bool:
        return self.low <= p <= self.high

    def __str__(self) -> str:
        if not self.n:
            return "-"
        return (
            f"{self.k}/{self.n} {format_percent(self.k, self.n)}"
            f" [{format_bound(self.low, self.n)}, {format_bound(self.high, self.n)}]"
        )


def z_for(confidence: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.96)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, *, confidence: float = 0.95) -> Rate:
    """The Wilson score interval: honest near 0 and 1 and for small n, unlike the Wald one."""
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return Rate(0, 0, 0.0, 1.0, confidence)
    z = z_for(confidence)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # clamp: floating error can push the bounds a hair past [0, 1] or past p itself
    return Rate(k, n, max(0.0, min(centre - half, p)), min(1.0, max(centre + half, p)), confidence)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Under the null each discordant pair is a fair coin, so the p-value is a
    binomial tail doubled (capped at 1).  No discordant pairs -> 1.0.
    """
    n = b + c
    if n == 0:
        return 1.0
    tail: float = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def bootstrap_diff(
    pairs: Sequence[tuple[Sequence[bool], Sequence[bool]]],
    *,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """Difference of accuracies (a - b) with a percentile CI, resampling clusters.

    Each element of ``pairs`` is one cluster (a problem): the outcomes of A and
    of B on it.  Resampling whole problems keeps samples of one problem
    together, which is what makes the interval honest when a problem has
    several samples.
    """
    clusters = [(sum(a), len(a), sum(b), len(b)) for a, b in pairs if a and b]
    if not clusters:
        return 0.0, 0.0, 0.0

    def diff(sample: Sequence[tuple[int, int, int, int]]) -> float:
        ka, na, kb, nb = (sum(col) for col in zip(*sample, strict=True))
        return float(ka / na - kb / nb)

    point = diff(clusters)
    rng = random.Random(seed)
    stats = sorted(diff(rng.choices(clusters, k=len(clusters))) for _ in range(n_boot))
    alpha = (1 - confidence) / 2
    lo = stats[math.floor(alpha * (n_boot - 1))]
    hi = stats[math.ceil((1 - alpha) * (n_boot - 1))]
    return point, lo, hi


@dataclass(frozen=True)
class HistogramBin:
    """Values in [low, high) (the last bin also holds ``high``)."""

    low: float
    high: float
    count: int

    @property
    def label(self) -> str:
        return f"{self.low:.0%}-{self.high:.0%}"


def histogram_bin(value: float, n_bins: int) -> int:
    """The index of the ``histogram`` bin that counts ``value`` (so a bar can list its members)."""
    return min(int(value * n_bins), n_bins - 1) if value >= 0 else 0


def histogram(values: Sequence[float], *, n_bins: int = 10) -> list[HistogramBin]:
    """Counts of values in ``n_bins`` equal bins over [0, 1]; solve rates are expected bimodal."""
    if n_bins < 1:
        raise ValueError("n_bins must be >= 1")
    counts = [0] * n_bins
    for v in values:
        counts[histogram_bin(v, n_bins)] += 1
    return [HistogramBin(i / n_bins, (i + 1) / n_bins, c) for i, c in enumerate(counts)]
