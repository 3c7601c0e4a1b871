"""Evaluation outputs: CSV tables, a markdown summary, box/strip plots, a one-page PNG and report.html.

Every file is written atomically. Tables put the best mean of each metric in bold (highest Dice/F1,
lowest distances and errors), as in the papers' tables.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import astuple, dataclass, field
from pathlib import Path

import numpy as np

from lesionsynth.evaluate.accumulator import DICE_FAIR, DICE_GOOD, MetricAccumulator, Stat
from lesionsynth.evaluate.matching import problem_lines
from lesionsynth.evaluate.metrics import LESION_METRICS, metric_info
from lesionsynth.evaluate.stats import PairedTest
from lesionsynth.io.atomic import write_csv_atomic
from lesionsynth.viz import html_page, html_table, pyplot, save_figure

#: metrics drawn as box/strip plots
PLOT_METRICS = ("dice", "lesion_f1")
#: colours of the models in plots (matplotlib's tab10)
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]


@dataclass
class ReportContext:
    """Everything the report shows besides the scores.

    Attributes:
        truth: truth folder.
        preds: model -> prediction folder.
        protocol: scoring protocol.
        label: lesion label.
        n_truth_cases: cases in the truth folder.
        missing: model -> truth cases without prediction.
        extra: model -> predictions without truth.
        missing_policy: ``skip`` or ``empty``.
    """

    truth: str
    preds: dict[str, str]
    protocol: str
    label: int
    n_truth_cases: int
    missing: dict[str, list[str]] = field(default_factory=dict)
    extra: dict[str, list[str]] = field(default_factory=dict)
    missing_policy: str = "skip"


# ----------------------------------------------------------------------------------------- formatting
def _fmt(x: float, fmt: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return fmt.format(x)


def format_stat(st: Stat, fmt: str) -> str:
    """``mean ± sd [median]`` plus ``(k failed)`` for infinities and ``(k n/a)`` for NaNs."""
    if st.n_valid == 0:
        s = "–"
    else:
        s = _fmt(st.mean, fmt)
        if not math.isnan(st.sd):
            s += " ± " + _fmt(st.sd, fmt)
        s += f" [{_fmt(st.median, fmt)}]"
    if st.failures:
        s += f" ({st.failures} failed)"
    if st.undefined and st.undefined < st.n:
        s += f" ({st.undefined} n/a)"
    return s


def best_models(summary: dict[str, dict[str, Stat]], metric: str) -> set[str]:
    """Models with the best mean of ``metric`` (ties included); empty for signed metrics."""
    hib = metric_info(metric).higher_is_better
    means = {m: s[metric].mean for m, s in summary.items() if not math.isnan(s[metric].mean)}
    if hib is None or len(means) < 2:
        return set()
    best = max(means.values()) if hib else min(means.values())
    return {m for m, v in means.items() if abs(v - best) <= 1e-12 * max(1.0, abs(best))}


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    sep = [":---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(sep) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------- tables
def summary_table(acc: MetricAccumulator, metrics: list[str],
                  bold: str = "md") -> tuple[list[str], list[list[str]]]:
    """Header and rows of the per-model summary table.

    ``bold`` marks the best mean: ``md`` (``**``), ``html`` (``<b>``, cells escaped) or ``none``.
    """
    summary = acc.summary()
    header = ["Model", "n"] + [metric_info(m).title for m in metrics]
    rows = []
    bests = {m: best_models(summary, m) for m in metrics}
    for model, stats in summary.items():
        row = [model, str(stats[metrics[0]].n)]
        for m in metrics:
            cell = format_stat(stats[m], metric_info(m).fmt)
            if bold == "html":
                cell = html.escape(cell)
            if model in bests[m] and bold != "none":
                cell = f"**{cell}**" if bold == "md" else f"<b>{cell}</b>"
            row.append(cell)
        rows.append(row)
    return header, rows


def category_table(acc: MetricAccumulator) -> tuple[list[str], list[list[str]]]:
    header = ["Model", "n", f"Dice ≥ {DICE_GOOD}", f"{DICE_FAIR} ≤ Dice < {DICE_GOOD}", f"Dice < {DICE_FAIR}"]
    rows = []
    for m, c in acc.dice_categories().items():
        n = c["n"]
        low = n - c["n_ge_0.6"] - c["n_0.3_0.6"]
        rows.append([m, str(n), f"{100 * c['share_ge_0.6']:.1f}% ({c['n_ge_0.6']})",
                     f"{100 * c['share_0.3_0.6']:.1f}% ({c['n_0.3_0.6']})",
                     f"{100 * low / n:.1f}% ({low})" if n else "–"])
    return header, rows


def tests_table(tests: list[PairedTest]) -> tuple[list[str], list[list[str]]]:
    header = ["Metric", "Comparison", "n", "median diff (A − B)", "p", "sig."]
    rows = []
    for t in tests:
        info = metric_info(t.metric)
        p = "–" if math.isnan(t.p) else (f"{t.p:.2e}" if t.p < 1e-3 else f"{t.p:.4f}")
        rows.append([info.title, f"{t.a} vs {t.b}", str(t.n), _fmt(t.median_diff, info.fmt), p, t.stars])
    return header, rows


def write_per_case_csv(path: Path, acc: MetricAccumulator, details: list[str]) -> None:
    """One row per case and model; ``inf`` for HD95 failures, empty for undefined values."""
    header = ["case", "model", *acc.metrics, *details]
    write_csv_atomic(path, header, [[r.get(k, "") for k in header] for r in acc.rows])


def write_summary_csv(path: Path, acc: MetricAccumulator) -> None:
    header = ["model", "metric", "n", "n_valid", "failures", "undefined", "mean", "sd", "median", "best"]
    summary = acc.summary()
    bests = {m: best_models(summary, m) for m in acc.metrics}
    write_csv_atomic(path, header, [[model, m, *astuple(st), int(model in bests[m])]
                             for model, stats in summary.items() for m, st in stats.items()])


def write_tests_csv(path: Path, tests: list[PairedTest]) -> None:
    header = ["metric", "model_a", "model_b", "n", "median_diff_a_minus_b", "statistic", "p", "stars"]
    write_csv_atomic(path, header, [[*astuple(t), t.stars] for t in tests])


def write_categories_csv(path: Path, acc: MetricAccumulator) -> None:
    header = ["model", "n", "n_ge_0.6", "share_ge_0.6", "n_0.3_0.6", "share_0.3_0.6"]
    write_csv_atomic(path, header, [[m, c["n"], c["n_ge_0.6"], c["share_ge_0.6"], c["n_0.3_0.6"], c["share_0.3_0.6"]]
                             for m, c in acc.dice_categories().items()])


def _lesion_and_other(acc: MetricAccumulator) -> tuple[list[str], list[str]]:
    lesion = [m for m in acc.metrics if m in LESION_METRICS]
    return lesion, [m for m in acc.metrics if m not in LESION_METRICS]


def summary_markdown(acc: MetricAccumulator, tests: list[PairedTest], ctx: ReportContext) -> str:
    lesion, other = _lesion_and_other(acc)
    out = ["# Evaluation summary", "", f"Truth: `{ctx.truth}` ({ctx.n_truth_cases} cases); protocol "
           f"`{ctx.protocol}`; lesion label {ctx.label} (value 1 in binary files).", "",
           "Models: " + ", ".join(f"**{m}** (`{p}`)" for m, p in ctx.preds.items()), ""]
    out += ["## Lesion metrics", "", "mean ± sd [median] over cases; best mean in **bold**. "
            "HD95 in mm; AVD = absolute volume difference (ml); ALD = absolute lesion-count difference; "
            "lesion F1 as in ISLES'22. *k failed*: HD95 undefined because exactly one mask is empty "
            "(not in the mean).", ""]
    out += [_md_table(*summary_table(acc, lesion)), ""]
    if other:
        out += ["## Tissue classes and volumes", "", "Per-class Dice and volume errors (|ΔV| mean = MAE), "
                "multi-class files only.", ""]
        out += [_md_table(*summary_table(acc, other)), ""]
    out += ["## Dice categories", "", "Share of cases (count).", "", _md_table(*category_table(acc)), ""]
    out += ["## Paired Wilcoxon signed-rank tests", "",
            "Two-sided, on cases scored for both models with finite values; ns p ≥ 0.05, * p < 0.05, "
            "** p < 0.01, *** p < 0.001, **** p < 0.0001 (no multiple-comparison correction).", ""]
    out += [_md_table(*tests_table(tests)) if tests else "(one model: nothing to compare)", ""]
    out += ["## Case matching", ""]
    problems = _matching_lines(ctx)
    out += [f"- {line}" for line in problems] if problems else ["Every model has a prediction for every case."]
    return "\n".join([*out, ""])


def _matching_lines(ctx: ReportContext) -> list[str]:
    what = "scored as empty predictions" if ctx.missing_policy == "empty" else "not scored"
    return problem_lines(ctx.preds, ctx.missing, ctx.extra, ", ".join, f" ({what})", " (ignored)")


# -------------------------------------------------------------------------------------------- plots
def draw_box_strip(ax, acc: MetricAccumulator, metric: str, tests: list[PairedTest] | None = None) -> None:
    """Box plot (no fliers) with every case as a jittered point, and brackets for the tests of ``metric``
    (every pair up to 4 models; beyond, the first ``n_models - 1`` tests, to keep plots readable)."""
    models = acc.models
    data = [np.asarray(list(acc.values(m, metric).values()), dtype=np.float64) for m in models]
    data = [v[np.isfinite(v)] for v in data]
    pos = np.arange(1, len(models) + 1)
    bp = ax.boxplot(data, positions=pos, widths=0.55, showfliers=False, patch_artist=True,
                    medianprops={"color": "black", "lw": 1.5}, whiskerprops={"lw": 1}, capprops={"lw": 1})
    rng = np.random.default_rng(0)
    for i, (box, v) in enumerate(zip(bp["boxes"], data, strict=True)):
        c = COLOURS[i % len(COLOURS)]
        box.set_facecolor(c)
        box.set_alpha(0.35)
        x = pos[i] + rng.uniform(-0.17, 0.17, size=v.size)
        ax.scatter(x, v, s=16, color=c, edgecolor="black", linewidth=0.3, alpha=0.85, zorder=3)
        if v.size:
            ax.scatter([pos[i]], [v.mean()], marker="D", s=28, color="white", edgecolor="black", zorder=4)
    ax.set_xticks(pos, models, rotation=20 if max(len(m) for m in models) > 10 else 0)
    ax.set_ylabel(metric_info(metric).title)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    finite = np.concatenate(data) if data else np.zeros(0)
    top = 1.0 if metric in ("dice", "lesion_f1") or metric.startswith("dice_") else (
        float(finite.max()) if finite.size else 1.0)
    lo = 0.0 if finite.size == 0 or finite.min() >= 0 else float(finite.min())
    span = max(top - lo, 1e-6)
    base, step, h = top + 0.05 * span, 0.09 * span, 0.02 * span
    sel = [t for t in tests or [] if t.metric == metric]
    sel = sel if len(models) <= 4 else sel[: len(models) - 1]
    pairs = sorted(((models.index(t.a) + 1, models.index(t.b) + 1, t) for t in sel),
                   key=lambda x: (abs(x[1] - x[0]), min(x[0], x[1])))
    placed: list[tuple[int, int, int]] = []  # (left, right, row): short brackets low, no overlaps in a row
    for i, j, t in pairs:
        left, right = min(i, j), max(i, j)
        row = 1 + max((r for a, b, r in placed if not (right < a or left > b)), default=-1)
        placed.append((left, right, row))
        y = base + row * step
        ax.plot([left, left, right, right], [y, y + h, y + h, y], color="black", lw=0.9)
        ax.text((left + right) / 2, y + h, t.stars, ha="center", va="bottom", fontsize=9)
    n_rows = 1 + max((r for _, _, r in placed), default=-1)
    ax.set_ylim(lo - 0.03 * span, base + n_rows * step + (0.04 * span if n_rows else 0.0))
    if top == 1.0 and lo == 0.0:
        ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_xlim(0.4, len(models) + 0.6)


def save_box_strip(path: Path, acc: MetricAccumulator, metric: str, tests: list[PairedTest]) -> Path:
    """One box/strip plot of ``metric`` per model as PNG (atomic)."""
    n = len(acc.models)
    fig, ax = pyplot().subplots(figsize=(1.3 * n + 1.8, 4.0), dpi=150)
    draw_box_strip(ax, acc, metric, tests)
    ax.set_title(metric_info(metric).title + " per case")
    fig.tight_layout()
    return save_figure(fig, path)


def _mpl_table(ax, header: list[str], rows: list[list[str]], title: str):
    """A titled matplotlib table (axes hidden) with column widths following the text lengths."""
    ax.axis("off")
    ax.set_title(title, fontsize=10)
    lens = np.array([max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)], dtype=float)
    widths = (lens + 2) / (lens + 2).sum()
    tab = ax.table(cellText=rows, colLabels=header, loc="upper center", cellLoc="center",
                   colWidths=list(widths))
    tab.auto_set_font_size(False)
    tab.set_fontsize(8.5)
    tab.scale(1, 1.35)
    return tab


def save_overview_png(path: Path, acc: MetricAccumulator, tests: list[PairedTest],
                      ctx: ReportContext) -> Path:
    """A one-page PNG of the report: the plots, the lesion-metric table and the Dice categories."""
    lesion, _ = _lesion_and_other(acc)
    n = len(acc.models)
    fig = pyplot().figure(figsize=(13, 4.6 + 0.3 * (2 * n + 2)), dpi=110)
    gs = fig.add_gridspec(3, 2, height_ratios=[4.0, 0.3 * (n + 1) + 0.3, 0.3 * (n + 1)], hspace=0.45)
    for k, metric in enumerate(PLOT_METRICS):
        ax = fig.add_subplot(gs[0, k])
        draw_box_strip(ax, acc, metric, tests)
        ax.set_title(metric_info(metric).title)
    bests = {m: best_models(acc.summary(), m) for m in lesion}
    tab = _mpl_table(fig.add_subplot(gs[1, :]), *summary_table(acc, lesion, bold="none"),
                     "Lesion metrics: mean ± sd [median], best in bold")
    for r, model in enumerate(acc.models, start=1):
        for c, m in enumerate(lesion, start=2):
            if model in bests[m]:
                tab[r, c].set_text_props(fontweight="bold")
    _mpl_table(fig.add_subplot(gs[2, :]), *category_table(acc), "Dice categories: share of cases (count)")
    fig.suptitle(f"lesionsynth evaluate: {ctx.n_truth_cases} truth cases, protocol {ctx.protocol}",
                 fontsize=12)
    return save_figure(fig, path, bbox_inches="tight")


# --------------------------------------------------------------------------------------------- html
def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def report_html(acc: MetricAccumulator, tests: list[PairedTest], ctx: ReportContext,
                plots: list[Path], details: list[str]) -> str:
    """A self-contained HTML page (plots embedded as base64 PNG)."""
    lesion, other = _lesion_and_other(acc)
    p = ["<h1>Evaluation report</h1>"]
    p.append(f"<p>Truth <code>{html.escape(ctx.truth)}</code> ({ctx.n_truth_cases} cases), protocol "
             f"<code>{html.escape(ctx.protocol)}</code>, lesion label {ctx.label} (1 in binary files).</p>")
    p.append("<ul>" + "".join(f"<li><b>{html.escape(m)}</b>: <code>{html.escape(d)}</code></li>"
                              for m, d in ctx.preds.items()) + "</ul>")
    problems = _matching_lines(ctx)
    if problems:
        p.append("<h2 class='warn'>Case matching problems</h2><ul>"
                 + "".join(f"<li class='warn'>{html.escape(x)}</li>" for x in problems) + "</ul>")
    p.append("<h2>Per-case distributions</h2><div class=plots>" + "".join(_img(x) for x in plots) + "</div>")
    p.append("<p class='note'>Boxes: quartiles and median; whiskers 1.5 IQR; points: cases; diamonds: means; "
             "brackets: paired Wilcoxon signed-rank test.</p>")
    p.append("<h2>Lesion metrics</h2><p class='note'>mean ± sd [median]; best mean in bold; "
             "<i>k failed</i>: HD95 undefined because exactly one mask is empty (not in the mean).</p>")
    p.append(html_table(*summary_table(acc, lesion, bold="html"), escape=False))
    if other:
        p.append("<h2>Tissue classes and volumes</h2>")
        p.append(html_table(*summary_table(acc, other, bold="html"), escape=False))
    p.append("<h2>Dice categories</h2>" + html_table(*category_table(acc)))
    p.append("<h2>Paired Wilcoxon signed-rank tests</h2><p class='note'>ns p ≥ 0.05, * p &lt; 0.05, "
             "** p &lt; 0.01, *** p &lt; 0.001, **** p &lt; 0.0001; two-sided, uncorrected.</p>")
    p.append(html_table(*tests_table(tests)) if tests else "<p>One model: nothing to compare.</p>")
    header = ["case", "model", *acc.metrics, *details]
    rows = [[r["case"], r["model"], *[_cell(r.get(k)) for k in header[2:]]] for r in acc.rows]
    p.append(f"<details><summary>Per-case scores ({len(acc.rows)} rows)</summary>"
             + html_table(header, rows) + "</details>")
    p.append("<p class='note'>Files: per_case.csv, summary.csv, summary.md, wilcoxon.csv, "
             "dice_categories.csv.</p>")
    return html_page("lesionsynth evaluation", "\n".join(p))


def _cell(v: object) -> str:
    if isinstance(v, float):
        return _fmt(v, "{:.4g}")
    return "" if v is None else str(v)
