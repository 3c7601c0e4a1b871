"""Score a trained label -> image translator on held-out random pairs and save a comparison PNG.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/bench_gan_translator.py --model runs/pix2pix --n 64 \\
        --png benchmarks/results/gan_translator.png

The pairs are drawn like the training pairs (same source, deformations and simulated lesions) but from a
seed stream the training never used. With the default ``mni`` source the anatomy is the training
anatomy (there is only one template); only the deformations and lesions are new. Prints the mean
absolute error and PSNR (intensities in [0, 1]), and per class the median intensity, real vs generated,
and the mean absolute error inside the class (the lesion row: how well lesions are rendered).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from lesionsynth.generative.gan.pairs import PairSampler
from lesionsynth.generative.gan.preview import save_pair_grid
from lesionsynth.generative.gan.translator import load_translator, render_volume
from lesionsynth.ops import case_seed, make_generator

HELD_OUT_SEED = 987_654_321


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--png", help="write labels / real / generated for the first 6 pairs with a lesion")
    args = ap.parse_args()
    G, cfg, schema, ckpt = load_translator(args.model)
    sampler = PairSampler(cfg.pairs, schema, cfg.spacing_mm, cfg.shape, cfg.spatial_dims)
    mae, psnr = [], []
    per_class: dict[str, list[tuple[float, float, float]]] = {c: [] for c in schema.classes}
    shown: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for i in range(args.n):
        labels, real = sampler.sample(make_generator(case_seed(HELD_OUT_SEED, i)))
        if cfg.spatial_dims == 2:
            fake = render_volume(G, labels[:, :, None], schema.num_classes, 2)[:, :, 0]
        else:
            fake = render_volume(G, labels, schema.num_classes, 3)
        r, f = (real + 1) / 2, (fake + 1) / 2
        mae.append(float((r - f).abs().mean()))
        mse = float(((r - f) ** 2).mean())
        psnr.append(10 * np.log10(1.0 / max(mse, 1e-12)))
        for k, c in enumerate(schema.classes):
            sel = labels == k
            if sel.sum() >= 10:
                per_class[c].append((float(r[sel].median()), float(f[sel].median()), float((r - f)[sel].abs().mean())))
        if (labels == schema.lesion_index).any() and len(shown) < 6:
            shown.append((labels, real, fake))
    print(f"model: {args.model} ({cfg.arch}, {cfg.spatial_dims}D, {cfg.spacing_mm} mm, iteration "
          f"{ckpt['iteration']}), {args.n} held-out pairs")
    print(f"MAE {np.mean(mae):.4f} (sd {np.std(mae):.4f}), PSNR {np.mean(psnr):.2f} dB (sd {np.std(psnr):.2f})")
    print("| class | pairs | real (mean of per-pair medians) | generated (same) | MAE inside the class |\n"
          "|---|---|---|---|---|")
    for c, vals in per_class.items():
        if vals:
            a = np.asarray(vals)
            print(f"| {c} | {len(a)} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.4f} |")
    if args.png and shown:
        save_pair_grid(args.png, [s[0] for s in shown], [s[1] for s in shown], [s[2] for s in shown],
                       schema.lesion_index, title=f"{cfg.arch} on held-out pairs (iteration {ckpt['iteration']})",
                       num_classes=schema.num_classes)
        print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
