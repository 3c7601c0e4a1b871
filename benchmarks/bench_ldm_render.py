"""The SPADE image LDM on the pix2pix benchmark's pairs: write training pairs, then score renders.

Usage::

    # 1. training pairs: MNI template + tissue labels, random deformation, simulated lesions (3D, 3 mm)
    python benchmarks/bench_ldm_render.py pairs -o runs/mni-pairs -n 200
    # 2. train the image LDM on them (grid centred on each pair's field of view)
    lesionsynth ldm train-autoencoder --config ldm-image-spade --dataset runs/mni-pairs \\
        --set grid.centre=null -o runs/img-ae
    lesionsynth ldm train-diffusion --autoencoder runs/img-ae -o runs/img-dm
    # 3. score it on held-out pairs (the seed stream of bench_gan_translator.py)
    python benchmarks/bench_ldm_render.py score --model runs/img-dm -n 32 --png benchmarks/results/ldm_render.png

The pairs are the ones ``gan train-translator`` draws with ``gan-pix2pix-2d-cpu``'s ``pairs`` settings, as 3D
crops. Scoring resamples each held-out pair onto the LDM's grid (labels nearest, image linear, then scaled to
[0, 1] by its 0.5/99.5 percentiles as the LDM's training images are), renders an image for the label map and
prints the mean absolute error and PSNR over the grid, and per class the median intensity (real vs rendered)
and the MAE inside the class: the table of ``bench_gan_translator.py``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

HELD_OUT_SEED = 987_654_321  # as bench_gan_translator.py
PAIRS_SEED = 12_345


def _sampler():
    from lesionsynth.config import PACKAGE_CONFIGS, load_config
    from lesionsynth.generative.gan.pairs import PairSampler
    from lesionsynth.generative.gan.translator import TranslatorConfig
    from lesionsynth.labels import load_schema

    cfg = load_config(TranslatorConfig, PACKAGE_CONFIGS / "gan-pix2pix-2d-cpu.yaml")
    return PairSampler(cfg.pairs, load_schema(cfg.schema), cfg.spacing_mm, cfg.shape, 3), cfg.spacing_mm


def write_pairs(out: Path, n: int) -> None:
    from lesionsynth.data import write_case, write_dataset_json
    from lesionsynth.ops import case_seed, make_generator

    sampler, spacing = _sampler()
    affine = np.diag([spacing] * 3 + [1.0])
    for i in range(n):
        labels, image = sampler.sample(make_generator(case_seed(PAIRS_SEED, i)))
        write_case(out, f"pair_{i:04d}", [((image + 1) / 2).numpy()], labels.numpy().astype(np.uint8), affine)
    write_dataset_json(out, ["T1"], {c: i for i, c in enumerate(sampler.schema.classes)}, n)


def score(model: str, n: int, png: str | None, steps: int | None) -> None:
    from lesionsynth.generative.ldm.data import _affine_for
    from lesionsynth.generative.ldm.models import load_image_ldm
    from lesionsynth.io.resample import resample_to_grid
    from lesionsynth.ops import case_seed, make_generator
    from lesionsynth.preprocess import scale_unit

    ldm = load_image_ldm(model, "cpu")
    sampler, spacing = _sampler()
    grid = ldm.cfg.grid
    shape = tuple(grid.shape)
    affine = np.diag([spacing] * 3 + [1.0])
    labels, reals = [], []
    for i in range(n):
        lab, img = sampler.sample(make_generator(case_seed(HELD_OUT_SEED, i)))
        aff = _affine_for(grid, affine, tuple(lab.shape))
        labels.append(resample_to_grid(lab, affine, aff, shape, mode="nearest").long())
        real = resample_to_grid(((img + 1) / 2).float(), affine, aff, shape, mode="linear")
        reals.append(scale_unit(real, lower=0.5, upper=99.5, max_samples=100_000))
    lab_t, real_t = torch.stack(labels), torch.stack(reals)
    fake_t = ldm.render(lab_t, [case_seed(HELD_OUT_SEED, 10_000 + i) for i in range(n)], steps=steps).clamp(0, 1)
    mae = (real_t - fake_t).abs().flatten(1).mean(1).numpy()
    mse = ((real_t - fake_t) ** 2).flatten(1).mean(1).numpy()
    psnr = 10 * np.log10(1.0 / np.maximum(mse, 1e-12))
    print(f"model: {model} (image LDM, {grid.spacing} mm grid {shape}), {n} held-out pairs, "
          f"{steps or ldm.cfg.sampling.steps} DDIM steps, guidance {ldm.cfg.sampling.guidance}")
    print(f"MAE {mae.mean():.4f} (sd {mae.std():.4f}), PSNR {psnr.mean():.2f} dB (sd {psnr.std():.2f})")
    print("| class | pairs | real (mean of per-pair medians) | generated (same) | MAE inside the class |\n"
          "|---|---|---|---|---|")
    for k, c in enumerate(ldm.schema.classes):
        rows = []
        for r, f, lab in zip(real_t, fake_t, lab_t):
            sel = lab == k
            if sel.sum() >= 10:
                rows.append((float(r[sel].median()), float(f[sel].median()), float((r - f)[sel].abs().mean())))
        if rows:
            a = np.asarray(rows)
            print(f"| {c} | {len(a)} | {a[:, 0].mean():.3f} | {a[:, 1].mean():.3f} | {a[:, 2].mean():.4f} |")
    if png:
        from lesionsynth.generative.gan.preview import save_pair_grid

        li = ldm.schema.lesion_index
        pick = [i for i in range(n) if (lab_t[i] == li).any()][:6]
        save_pair_grid(png, [lab_t[i] for i in pick], [real_t[i] * 2 - 1 for i in pick],
                       [fake_t[i] * 2 - 1 for i in pick], li,
                       title="SPADE image LDM on held-out pairs (axial slice through the lesion)",
                       num_classes=ldm.schema.num_classes)
        print(f"wrote {png}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("pairs")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("-n", type=int, default=200)
    s = sub.add_parser("score")
    s.add_argument("--model", required=True)
    s.add_argument("-n", type=int, default=32)
    s.add_argument("--steps", type=int, default=None)
    s.add_argument("--png", default=None)
    args = ap.parse_args()
    t0 = time.time()
    if args.mode == "pairs":
        write_pairs(Path(args.out), args.n)
    else:
        score(args.model, args.n, args.png, args.steps)
    print(f"({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
