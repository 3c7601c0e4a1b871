"""Benchmark of ``lesionsynth evaluate`` on 256^3 cases (CPU).

Generates a toy study (``lesionsynth.evaluate.toy``: tissue label maps with spherical lesions and three
simulated models) of N cases at 1 mm, 256^3, then times

1. the per-case phases of one model (read truth + prediction, all metrics, HD95 alone),
2. three HD95 implementations on the same masks: ours (cropped surfaces + KD-tree), an exact
   Euclidean distance transform on the cropped box, and MONAI's ``compute_hausdorff_distance``,
3. the full ``evaluate_folders`` run (3 models, native protocol, with report) and, on a few cases, the
   ``paper`` protocol (reslice to 1 mm, pad to 256^3).

Prints markdown tables. Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_evaluate.py --cases 20 [--workdir DIR] [--workers 1]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage

from lesionsynth.evaluate import evaluate_folders
from lesionsynth.evaluate import metrics as M
from lesionsynth.evaluate.scoring import ScoreOptions, read_labels, score_arrays
from lesionsynth.evaluate.toy import make_toy_study


def hd95_edt(t: np.ndarray, p: np.ndarray, spacing) -> float:
    """Alternative HD95: exact EDT of the complement of each surface on the cropped union box."""
    box = M.bounding_box(t | p, margin=1)
    t, p = t[box], p[box]
    et, ep = M.surface(t), M.surface(p)
    dt = ndimage.distance_transform_edt(~et, sampling=spacing)
    dp = ndimage.distance_transform_edt(~ep, sampling=spacing)
    return float(max(np.percentile(dp[et], 95), np.percentile(dt[ep], 95)))


def hd95_monai(t: np.ndarray, p: np.ndarray, spacing) -> float:
    from monai.metrics import compute_hausdorff_distance

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compute_hausdorff_distance(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None],
                                          percentile=95, spacing=list(spacing)).item()


def timed(f, *a, **k):
    t0 = time.perf_counter()
    r = f(*a, **k)
    return time.perf_counter() - t0, r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=20)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--paper-cases", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--workdir", default=None, help="keep the generated study here (default: temporary)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench_evaluate_"))
    shape = (args.size,) * 3
    t_gen, (truth, preds) = timed(make_toy_study, root / "study", n_cases=args.cases, shape=shape,
                                  spacing=(1.0, 1.0, 1.0), seed=0)
    print(f"# evaluate benchmark: {args.cases} cases of {args.size}^3 at 1 mm, 3 models "
          f"({platform.processor() or platform.machine()}, torch threads 1)\n")
    print(f"study generated in {t_gen:.1f} s ({root})\n")

    # 1-2. per-case phases and HD95 implementations (model "Synth")
    opts = ScoreOptions(label=5, tissue_classes={1: "grey_matter", 2: "white_matter", 3: "partial_volume",
                                                  4: "csf"})
    rows = {k: [] for k in ("read", "score", "hd95_ours", "hd95_edt", "hd95_monai")}
    lesion_vox, diffs = [], []
    for case in sorted(p.name for p in truth.iterdir()):
        dt_t, tv = timed(read_labels, truth / case)
        dt_p, pv = timed(read_labels, preds["Synth"] / case)
        rows["read"].append(dt_t + dt_p)
        rows["score"].append(timed(score_arrays, tv, pv, opts)[0])
        t, p = tv.lesion(5), pv.lesion(5)
        lesion_vox.append(int(t.sum()))
        if not t.any() or not p.any():
            continue
        d1, a = timed(M.hd95, t, p, (1.0, 1.0, 1.0))
        d2, b = timed(hd95_edt, t, p, (1.0, 1.0, 1.0))
        d3, c = timed(hd95_monai, t, p, (1.0, 1.0, 1.0))
        rows["hd95_ours"].append(d1)
        rows["hd95_edt"].append(d2)
        rows["hd95_monai"].append(d3)
        diffs.append(max(abs(a - b), abs(a - c)))
    print(f"truth lesion volume per case: median {np.median(lesion_vox) / 1000:.1f} ml "
          f"(range {min(lesion_vox) / 1000:.1f}-{max(lesion_vox) / 1000:.1f} ml)\n")
    print("| phase (one model, one case) | mean s | median s | max s |")
    print("| :--- | ---: | ---: | ---: |")
    names = {"read": "read truth + prediction (.nii.gz)", "score": "all metrics (lesion + 4 tissue Dice)",
             "hd95_ours": "HD95: surfaces + KD-tree (used)", "hd95_edt": "HD95: EDT on cropped box",
             "hd95_monai": "HD95: MONAI compute_hausdorff_distance"}
    for k, v in rows.items():
        v = np.asarray(v)
        print(f"| {names[k]} | {v.mean():.3f} | {np.median(v):.3f} | {v.max():.3f} |")
    print(f"\nlargest HD95 disagreement between the three implementations: {max(diffs):.2e} mm\n")

    # 3. full runs
    out = root / "out_native"
    dt_native, res = timed(evaluate_folders, truth, preds, out, workers=args.workers, progress=False)
    n_pairs = args.cases * len(preds)
    print("| full run | cases x models | wall s | s per case-model |")
    print("| :--- | ---: | ---: | ---: |")
    print(f"| native, report included, workers={args.workers} | {args.cases} x {len(preds)} | "
          f"{dt_native:.1f} | {dt_native / n_pairs:.2f} |")
    # paper protocol on clinical-like anisotropic cases (0.9 x 0.9 x 3 mm, 230 x 230 x 48): every case is
    # resliced to 1 mm and padded to 256^3 (interpolated, not a pure index shift)
    k = args.paper_cases
    ptruth, ppreds = make_toy_study(root / "aniso", n_cases=k, shape=(230, 230, 48), spacing=(0.9, 0.9, 3.0),
                                    seed=1)
    dt_aniso, _ = timed(evaluate_folders, ptruth, ppreds, root / "out_aniso_native", workers=args.workers,
                        progress=False)
    dt_paper, _ = timed(evaluate_folders, ptruth, ppreds, root / "out_aniso_paper", protocol="paper",
                        workers=args.workers, progress=False)
    print(f"| native, 230x230x48 at 0.9x0.9x3 mm | {k} x {len(ppreds)} | {dt_aniso:.1f} | "
          f"{dt_aniso / (k * len(ppreds)):.2f} |")
    print(f"| paper protocol, same cases (reslice to 1 mm, pad to 256^3) | {k} x {len(ppreds)} | "
          f"{dt_paper:.1f} | {dt_paper / (k * len(ppreds)):.2f} |")
    print("\nmean Dice per model: " + ", ".join(f"{m} {v['dice']:.3f}" for m, v in res["summary"].items()))
    if not args.workdir:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
