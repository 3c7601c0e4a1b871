"""``evaluate_folders``: score several models' prediction folders against a truth folder; write the report."""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from lesionsynth.errors import InputError
from lesionsynth.evaluate.accumulator import MetricAccumulator
from lesionsynth.evaluate.matching import Matching, match_cases
from lesionsynth.evaluate.metrics import LESION_METRICS
from lesionsynth.evaluate.report import (
    PLOT_METRICS,
    ReportContext,
    report_html,
    save_box_strip,
    save_overview_png,
    summary_markdown,
    write_categories_csv,
    write_per_case_csv,
    write_summary_csv,
    write_tests_csv,
)
from lesionsynth.evaluate.scoring import DETAIL_COLUMNS, PROTOCOLS, ScoreOptions, metric_columns, score_case
from lesionsynth.evaluate.stats import compare_models
from lesionsynth.io.atomic import write_text_atomic
from lesionsynth.labels import TISSUE
from lesionsynth.log import tqdm

MISSING_POLICIES = ("skip", "empty")

log = logging.getLogger(__name__)


def class_names(truth: str | Path, label: int) -> dict[int, str]:
    """Class value -> name, from the truth's ``dataset.json``, else the ``tissue`` schema for label 5."""
    root = Path(truth)
    cands = [root / "dataset.json"]
    if root.name.startswith("labels"):  # DIR/labelsTr given explicitly
        cands.append(root.parent / "dataset.json")
    for js in cands:
        if js.is_file():
            try:
                labels = json.loads(js.read_text()).get("labels", {})
                return {int(v): str(k) for k, v in labels.items() if isinstance(v, (int, float))}
            except (json.JSONDecodeError, ValueError, AttributeError):
                raise InputError(f"{js}: not a valid dataset.json (labels: name -> value)") from None
    return dict(enumerate(TISSUE.classes)) if label == TISSUE.lesion_index else {}


def _named(values: list[int], names: dict[int, str], what: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for v in values:
        if int(v) < 0:
            raise InputError(f"{what}: class values must be non-negative, got {v}")
        n = names.get(int(v), f"class{int(v)}")
        out[int(v)] = "".join(ch if ch.isalnum() or ch in "_-" else "_" for ch in n)
    return out


def _score_job(args: tuple) -> tuple[str, dict]:
    case, truth_path, pred_paths, opts = args
    return case, score_case(truth_path, pred_paths, opts)


def evaluate_folders(
    truth: Path,
    preds: dict[str, Path],
    out_dir: Path,
    label: int = 5,
    protocol: str = "native",
    tissue_classes: list[int] | None = None,
    volume_labels: list[int] | None = None,
    missing: str = "skip",
    workers: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Score every model against the truth and write tables, plots and ``report.html`` to ``out_dir``.

    Args:
        truth: folder of truth label maps (plain folder or nnU-Net dataset folder).
        preds: model name -> folder of predicted label maps.
        out_dir: output folder (created).
        label: lesion label value in multi-class files (binary files use 1).
        protocol: ``native`` (truth grid) or ``paper`` (1 mm, padded to 256^3).
        tissue_classes: class values for per-class Dice; None = every non-background, non-lesion class
            named in the truth's ``dataset.json`` (or the ``tissue`` schema classes 1-4 for label 5),
            kept only where some case has both files multi-class; ``[]`` = none.
        volume_labels: class values whose volume error (ml) is reported (e.g. ventricles).
        missing: ``skip`` (truth cases without prediction are reported and not scored) or ``empty``
            (scored as an empty prediction).
        workers: parallel processes over cases.
        progress: show a progress bar over cases (stderr).

    Returns:
        ``report_html``, ``summary_csv``, ``summary_md``, ``per_case_csv`` (paths), ``plots`` (paths),
        ``summary`` {model: {metric: mean}}, ``stats`` {model: {metric: {n, n_valid, failures,
        undefined, mean, sd, median}}}, ``dice_categories``, ``tests`` (list of dicts), ``missing`` and
        ``extra`` {model: [case ids]}.

    Raises:
        InputError: bad folder or file, no matching case, unknown protocol or missing policy.
    """
    if protocol not in PROTOCOLS:
        raise InputError(f"protocol: unknown protocol '{protocol}' (choose from {', '.join(PROTOCOLS)})")
    if missing not in MISSING_POLICIES:
        raise InputError(f"missing: unknown policy '{missing}' (choose from {', '.join(MISSING_POLICIES)})")
    if not preds:
        raise InputError("preds: give at least one prediction folder")
    if label < 1:
        raise InputError(f"label: the lesion label must be >= 1, got {label}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir}: exists and is not a folder")
    matching = match_cases(truth, preds)
    names = class_names(truth, label)
    auto_tissue = tissue_classes is None
    if tissue_classes is None:
        tissue_classes = [v for v in sorted(names) if v not in (0, label)]
    tissue = [v for v in tissue_classes if v != label]
    opts = ScoreOptions(label=label, protocol=protocol,
                        tissue_classes=_named(tissue, names, "tissue classes"),
                        volume_labels=_named(volume_labels or [], names, "volume labels"))
    what = "scoring them as empty" if missing == "empty" else "not scored"
    for by_model, text in ((matching.missing, f"truth case(s) without prediction ({what})"),
                           (matching.extra, "prediction(s) without truth (ignored)")):
        for model, ids in by_model.items():
            if ids:
                log.warning(f"{model}: {len(ids)} {text}, e.g. {', '.join(ids[:5])}")

    jobs = _jobs(matching, missing, opts)
    results: dict[str, dict] = {}
    bar = tqdm(total=len(jobs), desc="evaluate", unit="case", file=sys.stderr,
               disable=None if progress else True)
    pool = (ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"))
            if workers > 1 and len(jobs) > 1 else None)
    try:
        for case, rows in (pool.map if pool else map)(_score_job, jobs):
            results[case] = rows
            bar.update(1)
    finally:
        bar.close()
        if pool:
            pool.shutdown()

    metrics = metric_columns(opts)
    if auto_tissue:  # drop per-class columns that never applied (binary files)
        keep = {f"dice_{n}" for n in opts.tissue_classes.values()
                if any(not math.isnan(r[f"dice_{n}"]) for rows in results.values() for r in rows.values())}
        metrics = [m for m in metrics if not m.startswith("dice_") or m in keep]
    acc = MetricAccumulator(metrics)
    for model in preds:
        for case in matching.cases:
            if case in results and model in results[case]:
                acc.add(case, model, results[case][model])
    tests = compare_models(acc, [m for m in metrics if m in LESION_METRICS or m.startswith("abs_vol")])
    ctx = ReportContext(truth=str(truth), preds={m: str(p) for m, p in preds.items()}, protocol=protocol,
                        label=label, n_truth_cases=len(matching.truth), missing=matching.missing,
                        extra=matching.extra, missing_policy=missing)
    return _write_outputs(out_dir, acc, tests, ctx)


def _jobs(matching: Matching, missing: str, opts: ScoreOptions) -> list[tuple]:
    jobs = []
    for case in matching.cases:
        paths = {m: files.get(case) for m, files in matching.preds.items() if case in files or missing == "empty"}
        if paths:
            jobs.append((case, matching.truth[case], paths, opts))
    return jobs


def _write_outputs(out_dir: Path, acc: MetricAccumulator, tests: list, ctx: ReportContext) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    details = list(DETAIL_COLUMNS)
    write_per_case_csv(out_dir / "per_case.csv", acc, details)
    write_summary_csv(out_dir / "summary.csv", acc)
    write_tests_csv(out_dir / "wilcoxon.csv", tests)
    write_categories_csv(out_dir / "dice_categories.csv", acc)
    write_text_atomic(out_dir / "summary.md", summary_markdown(acc, tests, ctx))
    plots = [save_box_strip(out_dir / f"plot_{m}.png", acc, m, tests) for m in PLOT_METRICS]
    save_overview_png(out_dir / "report.png", acc, tests, ctx)
    write_text_atomic(out_dir / "report.html", report_html(acc, tests, ctx, plots, details))
    summary = acc.summary()
    return {
        "report_html": out_dir / "report.html",
        "report_png": out_dir / "report.png",
        "summary_csv": out_dir / "summary.csv",
        "summary_md": out_dir / "summary.md",
        "per_case_csv": out_dir / "per_case.csv",
        "wilcoxon_csv": out_dir / "wilcoxon.csv",
        "plots": plots,
        "summary": {m: {k: st.mean for k, st in s.items()} for m, s in summary.items()},
        "stats": {m: {k: asdict(st) for k, st in s.items()} for m, s in summary.items()},
        "dice_categories": acc.dice_categories(),
        "tests": [{k: getattr(t, k) for k in ("metric", "a", "b", "n", "median_diff", "p", "stars")} for t in tests],
        "missing": ctx.missing,
        "extra": ctx.extra,
    }
