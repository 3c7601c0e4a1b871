"""Collecting per-case scores and summarising them per model, without hiding infinities.

Aggregation rule: a summary statistic uses the *finite* values only. Infinite values (an HD95 with
exactly one empty mask) are counted as ``failures``; NaN values (a score that does not apply, e.g.
per-class Dice of a binary file) are counted as ``undefined``. Both counts are reported next to the
mean, so ``HD95 = 7.1 ± 2.0 (3 failures)`` says that 3 cases are not in the mean.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Dice categories reported as shares of cases (as in the SynthStroke paper)
DICE_GOOD = 0.6
DICE_FAIR = 0.3


@dataclass(frozen=True)
class Stat:
    """Summary of one metric for one model.

    Attributes:
        n: cases scored.
        n_valid: finite values (used in mean/sd/median).
        failures: infinite values (e.g. HD95 with one empty mask).
        undefined: NaN values (score not applicable).
        mean, sd, median: over the finite values (sd with ddof=1; NaN when undefined).
    """

    n: int
    n_valid: int
    failures: int
    undefined: int
    mean: float
    sd: float
    median: float


def summarise(values: list[float] | np.ndarray) -> Stat:
    """NaN/inf-aware summary of one column (see the module docstring)."""
    v = np.asarray(values, dtype=np.float64)
    fin = v[np.isfinite(v)]
    nan = float("nan")
    return Stat(
        n=int(v.size),
        n_valid=int(fin.size),
        failures=int(np.isinf(v).sum()),
        undefined=int(np.isnan(v).sum()),
        mean=float(fin.mean()) if fin.size else nan,
        sd=float(fin.std(ddof=1)) if fin.size > 1 else nan,
        median=float(np.median(fin)) if fin.size else nan,
    )


@dataclass
class MetricAccumulator:
    """Per-case rows of several models; summaries, Dice categories and paired values.

    Attributes:
        metrics: metric columns, in table order.
        rows: one dict per (case, model) with keys ``case``, ``model`` and the metric/detail columns.
    """

    metrics: list[str]
    rows: list[dict] = field(default_factory=list)

    def add(self, case: str, model: str, scores: dict) -> None:
        """Record the scores of one model on one case."""
        missing = [m for m in self.metrics if m not in scores]
        if missing:
            raise KeyError(f"scores of {model}/{case} lack metric(s) {missing}")
        self.rows.append({"case": case, "model": model, **scores})

    @property
    def models(self) -> list[str]:
        """Models in the order they were first added."""
        return list(dict.fromkeys(r["model"] for r in self.rows))

    def values(self, model: str, metric: str) -> dict[str, float]:
        """case -> value of one metric of one model."""
        return {r["case"]: float(r[metric]) for r in self.rows if r["model"] == model}

    def summary(self) -> dict[str, dict[str, Stat]]:
        """model -> metric -> :class:`Stat`."""
        return {m: {k: summarise(list(self.values(m, k).values())) for k in self.metrics}
                for m in self.models}

    def dice_categories(self, metric: str = "dice") -> dict[str, dict[str, float]]:
        """model -> shares of cases with Dice >= 0.6 and with 0.3 <= Dice < 0.6 (and their counts)."""
        out = {}
        for m in self.models:
            v = np.asarray(list(self.values(m, metric).values()), dtype=np.float64)
            n = int(v.size)
            good = int((v >= DICE_GOOD).sum())
            fair = int(((v >= DICE_FAIR) & (v < DICE_GOOD)).sum())
            out[m] = {"n": n, "n_ge_0.6": good, "n_0.3_0.6": fair,
                      "share_ge_0.6": good / n if n else math.nan,
                      "share_0.3_0.6": fair / n if n else math.nan}
        return out

    def paired(self, a: str, b: str, metric: str) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Cases scored for both models with finite values in both, and the two value arrays."""
        va, vb = self.values(a, metric), self.values(b, metric)
        cases = [c for c in va if c in vb and math.isfinite(va[c]) and math.isfinite(vb[c])]
        return cases, np.array([va[c] for c in cases]), np.array([vb[c] for c in cases])
