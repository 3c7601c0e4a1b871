"""Conditioning check of a mask LDM: does the generated structure volume follow c? (Ruschke et al., Fig. 3)

For every guidance scale G and condition c on a grid, ``n`` maps are generated with the same ``n`` seeds
(common random numbers, so differences between cells come from c and G only). For each map the volume
ratio of the condition class is measured and normalised like the training condition (c_gen). Outputs in
the folder:

- ``conditioning.csv``: one row per generated map (guidance, c, seed, ratio, c_gen, volume_ml);
- ``conditioning.md``: mean +- sd of c_gen and the volume per (G, c), and per G the Pearson and
  Spearman correlation between c and c_gen over all maps;
- ``conditioning.png``: c_gen against c per G (mean +- sd), with the identity line;
- ``conditioning.json``: the correlations and settings.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from lesionsynth.generative.ldm.models import MaskLDM
from lesionsynth.io.atomic import write_csv_atomic, write_text_atomic
from lesionsynth.ops import case_seed


def correlations(c: np.ndarray, v: np.ndarray) -> tuple[float, float]:
    """Pearson r and Spearman rho (NaN when either side is constant)."""
    from scipy import stats

    if np.std(c) == 0 or np.std(v) == 0:
        return float("nan"), float("nan")
    return float(stats.pearsonr(c, v)[0]), float(stats.spearmanr(c, v)[0])


def check_conditioning(ldm: MaskLDM, out: str | Path, conditions: Sequence[float], guidances: Sequence[float],
                       n: int, seed: int = 0, steps: int | None = None, batch_size: int | None = None,
                       progress: bool | None = None) -> dict:
    """Generate over the (G, c) grid; write table, plot and summary into ``out``; return the summary."""
    from lesionsynth.log import tqdm

    assert ldm.condition is not None
    cond = ldm.condition
    out = Path(out)
    seeds = [case_seed(seed, k) for k in range(n)]
    rows = []
    cells = [(g, c) for g in guidances for c in conditions]
    for g, c in tqdm(cells, desc="check-conditioning", disable=None if progress is None else not progress):
        maps = ldm.sample([c] * n, seeds, guidance=g, steps=steps, batch_size=batch_size)
        ratio = cond.measure(maps).numpy()
        vol = cond.volume_ml(maps).numpy()
        rows += [{"guidance": g, "c": c, "sample": k, "seed": seeds[k], "ratio": float(ratio[k]),
                  "c_gen": float(cond.normalise(ratio[k])), "volume_ml": float(vol[k])} for k in range(n)]
    summary = _summarise(rows, guidances, conditions)
    summary.update(n=n, seed=seed, steps=steps or ldm.cfg.sampling.steps, condition=asdict(cond))
    write_csv_atomic(out / "conditioning.csv", list(rows[0]), [list(r.values()) for r in rows])
    write_text_atomic(out / "conditioning.md", markdown_table(summary))
    write_text_atomic(out / "conditioning.json", json.dumps(summary, indent=1) + "\n")
    plot(out / "conditioning.png", summary)
    return summary


def _summarise(rows: list[dict], guidances: Sequence[float], conditions: Sequence[float]) -> dict:
    per_g = {}
    cells = []
    for g in guidances:
        sel = [r for r in rows if r["guidance"] == g]
        c = np.array([r["c"] for r in sel])
        v = np.array([r["c_gen"] for r in sel])
        pr, sr = correlations(c, v)
        per_g[str(g)] = {"pearson": pr, "spearman": sr, "mae": float(np.mean(np.abs(v - c)))}
        for cc in conditions:
            vv = np.array([r["c_gen"] for r in sel if r["c"] == cc])
            ml = np.array([r["volume_ml"] for r in sel if r["c"] == cc])
            cells.append({"guidance": g, "c": cc, "c_gen_mean": float(vv.mean()), "c_gen_sd": float(vv.std()),
                          "volume_ml_mean": float(ml.mean()), "volume_ml_sd": float(ml.std()),
                          "empty": int((ml == 0).sum())})
    return {"per_guidance": per_g, "cells": cells}


def markdown_table(summary: dict) -> str:
    cond = summary["condition"]
    lines = [f"Condition: volume ratio of '{cond['label']}' (c = 0 -> ratio {cond['r_min']:.5f}, "
             f"c = 1 -> {cond['r_max']:.5f}); {summary['n']} maps per cell, {summary['steps']} DDIM steps, "
             f"seed {summary['seed']}.", "",
             "| G | Pearson r (c, c_gen) | Spearman rho | mean abs error |", "|---|---|---|---|"]
    for g, s in summary["per_guidance"].items():
        lines.append(f"| {float(g):g} | {s['pearson']:.3f} | {s['spearman']:.3f} | {s['mae']:.3f} |")
    lines += ["", "| G | c | c_gen mean | c_gen sd | volume ml (mean +- sd) | empty maps |",
              "|---|---|---|---|---|---|"]
    for r in summary["cells"]:
        lines.append(f"| {r['guidance']:g} | {r['c']:.2f} | {r['c_gen_mean']:.3f} | {r['c_gen_sd']:.3f} | "
                     f"{r['volume_ml_mean']:.1f} +- {r['volume_ml_sd']:.1f} | {r['empty']} |")
    return "\n".join(lines) + "\n"


def plot(path: Path, summary: dict) -> None:
    """Generated c against requested c, one line per guidance scale (mean +- sd)."""
    from lesionsynth.viz import pyplot, save_figure

    fig, ax = pyplot().subplots(figsize=(4.2, 3.6))
    for g, s in summary["per_guidance"].items():
        cells = [r for r in summary["cells"] if str(r["guidance"]) == g]
        c, m, sd = np.array([[r["c"], r["c_gen_mean"], r["c_gen_sd"]] for r in cells]).T
        ax.errorbar(c, m, yerr=sd, marker="o", ms=3, capsize=2, lw=1,
                    label=f"G={float(g):g} (r={s['pearson']:.2f})")
    lo = min(0.0, min(r["c_gen_mean"] for r in summary["cells"]))
    hi = max(1.0, max(r["c_gen_mean"] for r in summary["cells"]))
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="identity")
    ax.set_xlabel("condition c")
    ax.set_ylabel("generated c")
    ax.set_title(f"{summary['condition']['label']} volume ratio (normalised)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path, dpi=90)
