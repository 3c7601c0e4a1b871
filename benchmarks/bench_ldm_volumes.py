"""Volume-guided mask sets: does a mask LDM sampled with c ~ U(A, B) give the lesion volumes asked for?

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_ldm_volumes.py --model runs/lesion-dm --ranges 0 0.4 0.6 1 \\
        -n 64 --guidance 3 --steps 25 --out runs/volume-sets --png benchmarks/results/ldm_volume_sets.png

For each range, ``lesionsynth ldm sample --condition-range A B`` (the library call behind it) writes ``n``
masks, each with its own condition drawn from (seed, i). Prints, per range, the requested volume interval
(c mapped back to ml through the model's condition), the generated volumes' quantiles, the share of masks
whose volume falls inside the requested interval and the rank correlation between requested and generated
volume; the PNG overlays the generated-volume histograms on the requested intervals (and, with ``--real``,
the training masks' volumes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from scipy.stats import spearmanr

    from lesionsynth.generative.ldm.build import sample_to_folder
    from lesionsynth.generative.ldm.models import load_mask_ldm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="train-diffusion run of a mask LDM")
    ap.add_argument("--ranges", type=float, nargs="+", default=[0.0, 0.4, 0.6, 1.0], help="pairs A B")
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--guidance", type=float, default=None)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True, help="folder for the sampled sets")
    ap.add_argument("--png", default=None)
    ap.add_argument("--real", default=None, help="the training masks (histogram of their volumes)")
    args = ap.parse_args()
    if len(args.ranges) % 2:
        ap.error("--ranges takes pairs A B")
    t0 = time.time()
    mask = load_mask_ldm(args.model, "cpu")
    cond = mask.condition
    assert cond is not None and cond.icv_voxels is not None, "a lesion-mask LDM (fixed ICV) is expected"
    ml_per_ratio = cond.icv_voxels * cond.voxel_ml

    def to_ml(c: float) -> float:
        return float(cond.ratio(c)) * ml_per_ratio

    sets = []
    print(f"model: {args.model}, {args.n} masks per range, guidance "
          f"{mask.cfg.sampling.guidance if args.guidance is None else args.guidance}, {args.steps} DDIM steps, "
          f"seed {args.seed}; c = 0 is {to_ml(0):.1f} ml, c = 1 is {to_ml(1):.1f} ml\n")
    print("| c range | requested (ml) | requested median | generated median (q25-q75), ml | inside the requested "
          "interval | empty masks | Spearman (requested, generated) |\n|---|---|---|---|---|---|---|")
    for lo, hi in zip(args.ranges[::2], args.ranges[1::2]):
        rows = sample_to_folder(mask, Path(args.out) / f"c{lo:g}-{hi:g}", (lo, hi), args.n, args.guidance,
                                args.seed, args.steps)
        req = np.array([to_ml(r["condition"]) for r in rows])
        gen = np.array([r["volume_ml"] for r in rows])
        inside = float(np.mean((gen >= to_ml(lo)) & (gen <= to_ml(hi))))
        rho = float(spearmanr(req, gen)[0]) if np.ptp(gen) > 0 else float("nan")
        q25, q50, q75 = np.percentile(gen, [25, 50, 75])
        print(f"| U({lo:g}, {hi:g}) | {to_ml(lo):.0f}-{to_ml(hi):.0f} | {np.median(req):.0f} | {q50:.0f} "
              f"({q25:.0f}-{q75:.0f}) | {inside:.2f} | {int((gen == 0).sum())} / {len(gen)} | {rho:.2f} |")
        sets.append((lo, hi, gen))
    real = None
    if args.real:
        import nibabel as nib

        from lesionsynth.io.nifti import find_images

        real = []
        for f in find_images(args.real):
            img = nib.load(str(f))
            real.append(float((np.asanyarray(img.dataobj) > 0.5).sum() * abs(np.linalg.det(img.affine[:3, :3]))
                              / 1000.0))
        print(f"\ntraining masks ({len(real)}): median {np.median(real):.0f} ml "
              f"({np.percentile(real, 25):.0f}-{np.percentile(real, 75):.0f})")
    if args.png:
        from lesionsynth.viz import pyplot, save_figure

        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 3.6))
        top = max([g.max() for *_, g in sets] + ([max(real)] if real else []) + [to_ml(1)])
        bins = np.linspace(0, top * 1.05, 30)
        colours = ["tab:blue", "tab:orange", "tab:green", "tab:red"]
        if real:
            ax.hist(real, bins=bins, color="grey", alpha=0.35, label="training masks")
        for k, (lo, hi, gen) in enumerate(sets):
            c = colours[k % len(colours)]
            ax.axvspan(to_ml(lo), to_ml(hi), color=c, alpha=0.08)
            ax.hist(gen, bins=bins, histtype="step", lw=2, color=c, label=f"generated, c ~ U({lo:g}, {hi:g})")
        ax.set_xlabel("lesion volume (ml); shaded: the requested interval")
        ax.set_ylabel("masks")
        ax.legend(fontsize=8)
        fig.tight_layout()
        save_figure(fig, args.png)
        print(f"wrote {args.png}")
    print(f"\n({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
