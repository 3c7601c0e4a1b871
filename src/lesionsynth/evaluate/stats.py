"""Paired Wilcoxon signed-rank tests between models, with the papers' star notation."""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import wilcoxon

from lesionsynth.evaluate.accumulator import MetricAccumulator

#: (upper p bound, stars), checked in order; p >= 0.05 is "ns"
STAR_LEVELS = ((1e-4, "****"), (1e-3, "***"), (1e-2, "**"), (5e-2, "*"))


def stars(p: float) -> str:
    """Star notation: ``****`` p<0.0001, ``***`` p<0.001, ``**`` p<0.01, ``*`` p<0.05, else ``ns``.

    An undefined p-value (too few cases) gives ``n/a``.
    """
    if p is None or not math.isfinite(p):
        return "n/a"
    for bound, s in STAR_LEVELS:
        if p < bound:
            return s
    return "ns"


@dataclass(frozen=True)
class PairedTest:
    """One paired comparison of two models on one metric.

    Attributes:
        metric: the metric.
        a, b: the two models.
        n: cases with finite values for both models.
        median_diff: median of ``a - b`` over those cases.
        statistic: Wilcoxon statistic (NaN when not computable).
        p: two-sided p-value (1.0 when all differences are zero, NaN with fewer than 2 cases).
    """

    metric: str
    a: str
    b: str
    n: int
    median_diff: float
    statistic: float
    p: float

    @property
    def stars(self) -> str:
        return stars(self.p)


def paired_wilcoxon(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Two-sided paired Wilcoxon signed-rank test (zero differences dropped, scipy's default).

    Returns:
        ``(statistic, p)``; ``(0, 1.0)`` when every difference is zero; NaNs with fewer than 2 pairs.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2:
        return float("nan"), float("nan")
    d = x - y
    if np.all(d == 0):
        return 0.0, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        res = wilcoxon(x, y, zero_method="wilcox", alternative="two-sided")
    return float(res.statistic), float(res.pvalue)


def compare_models(acc: MetricAccumulator, metrics: list[str]) -> list[PairedTest]:
    """Paired tests for every pair of models and every metric (cases scored for both, finite values)."""
    out = []
    for metric in metrics:
        for a, b in itertools.combinations(acc.models, 2):
            _, xa, xb = acc.paired(a, b, metric)
            stat, p = paired_wilcoxon(xa, xb)
            med = float(np.median(xa - xb)) if xa.size else float("nan")
            out.append(PairedTest(metric, a, b, int(xa.size), med, stat, p))
    return out
