"""Accumulator aggregation (NaN/inf aware), Dice categories, paired Wilcoxon tests and stars."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lesionsynth.evaluate.accumulator import MetricAccumulator, summarise
from lesionsynth.evaluate.stats import compare_models, paired_wilcoxon, stars


@pytest.mark.parametrize("p, s", [(0.5, "ns"), (0.05, "ns"), (0.0499, "*"), (0.01, "*"), (0.0099, "**"),
                                  (0.001, "**"), (0.00099, "***"), (0.0001, "***"), (0.000099, "****"),
                                  (float("nan"), "n/a")])
def test_star_notation(p, s):
    assert stars(p) == s


def test_summary_never_averages_infinity():
    st = summarise([1.0, 3.0, float("inf"), float("nan"), 5.0])
    assert (st.n, st.n_valid, st.failures, st.undefined) == (5, 3, 1, 1)
    assert st.mean == pytest.approx(3.0)
    assert st.sd == pytest.approx(2.0)
    assert st.median == pytest.approx(3.0)
    only_inf = summarise([float("inf")] * 2)
    assert only_inf.failures == 2 and math.isnan(only_inf.mean)


def test_wilcoxon_exact_p_values():
    x = np.arange(10.0)
    # all ten differences negative with distinct ranks: exact two-sided p = 2 / 2^10
    stat, p = paired_wilcoxon(x, x + np.linspace(0.1, 1.0, 10))
    assert p == pytest.approx(2 / 2**10)
    assert stat == 0.0
    assert paired_wilcoxon(x, x) == (0.0, 1.0)
    assert all(math.isnan(v) for v in paired_wilcoxon([1.0], [2.0]))


def _acc():
    acc = MetricAccumulator(["dice", "hd95_mm"])
    rng = np.random.default_rng(0)
    for i in range(12):
        base = rng.uniform(0.2, 0.5)
        acc.add(f"c{i}", "A", {"dice": base, "hd95_mm": 10.0 if i else float("inf")})
        acc.add(f"c{i}", "B", {"dice": base + 0.3, "hd95_mm": 5.0})
    return acc


def test_accumulator_summary_categories_and_pairs():
    acc = _acc()
    s = acc.summary()
    assert acc.models == ["A", "B"]
    assert s["A"]["hd95_mm"].failures == 1 and s["A"]["hd95_mm"].mean == 10.0
    cats = acc.dice_categories()
    a_vals = np.array(list(acc.values("A", "dice").values()))
    assert cats["A"]["n_ge_0.6"] == int((a_vals >= 0.6).sum())
    assert cats["A"]["n_0.3_0.6"] == int(((a_vals >= 0.3) & (a_vals < 0.6)).sum())
    assert cats["B"]["share_ge_0.6"] == pytest.approx(np.mean(a_vals + 0.3 >= 0.6))
    cases, xa, xb = acc.paired("A", "B", "hd95_mm")
    assert len(cases) == 11 and "c0" not in cases  # the infinite HD95 is excluded from the pairing
    tests = compare_models(acc, ["dice", "hd95_mm"])
    dice_test = next(t for t in tests if t.metric == "dice")
    assert dice_test.n == 12 and dice_test.median_diff == pytest.approx(-0.3)
    assert dice_test.p == pytest.approx(2 / 2**12) and dice_test.stars == "***"


def test_accumulator_rejects_incomplete_rows():
    acc = MetricAccumulator(["dice", "hd95_mm"])
    with pytest.raises(KeyError, match="hd95_mm"):
        acc.add("c", "A", {"dice": 1.0})
