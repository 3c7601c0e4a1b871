"""Compare generated lesion masks with real ones: volume and component-count distributions.

Usage (after ``lesionsynth gan train-masks`` and ``lesionsynth gan sample-masks``)::

    OMP_NUM_THREADS=1 python benchmarks/bench_gan.py --real ../shared/data/lesions-lesymap \\
        --model runs/masks --generated runs/masks-samples [--n 100]

Prints a Markdown table with three groups of masks:

- ``real``: the real masks at their own 1 mm resolution;
- ``real via grid``: the same masks area-averaged onto the GAN's coarse grid and brought back to the
  1 mm MNI grid with the sampler's up-sampling, smoothing, threshold and brain mask: the best a perfect
  generator on that grid could do (what the grid itself loses);
- ``generated``: the sampled masks.

It also reports, for each generated mask, the Dice with its nearest real training mask (both
mirror images) on the coarse grid: values near 1 would mean the GAN copies training masks.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lesionsynth.generative.gan.mask_data import load_coarse_masks
from lesionsynth.generative.gan.mask_gan import load_mask_generator
from lesionsynth.generative.gan.mask_sampling import coarse_probs, mni_output_grid, to_grid
from lesionsynth.generative.gan.stats import comparison_table, folder_stats, mask_stats, summarise
from lesionsynth.io.nifti import find_images, load_volume
from lesionsynth.ops import case_seed


def nearest_real_dice(gen_probs: torch.Tensor, real: torch.Tensor) -> np.ndarray:
    """Max Dice of each generated coarse mask (> 0.5) with any real coarse mask or its mirror image."""
    g = (gen_probs > 0.5).flatten(1).float()
    r = torch.cat([real, real.flip(2)])[:, 0] > 0.5
    r = r.flatten(1).float()
    inter = g @ r.T
    dice = 2 * inter / (g.sum(1, keepdim=True) + r.sum(1)[None]).clamp_min(1)
    return dice.max(1).values.numpy()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--real", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--generated", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0, help="the seed the generated masks were sampled with")
    args = ap.parse_args()
    t0 = time.time()
    G, cfg, ckpt = load_mask_generator(args.model)
    out = mni_output_grid()
    real_stats = folder_stats(args.real, args.n)
    files = find_images(args.real)[: args.n]
    real_coarse = load_coarse_masks(args.real, cfg.grid, progress=False)[: args.n]
    roundtrip = []
    for i in range(len(files)):
        m = to_grid(real_coarse[i, 0], cfg.grid, out, cfg.smooth_mm, cfg.threshold)
        roundtrip.append({"file": files[i].name, **mask_stats(m.numpy(), out.affine)})
    gen_stats = folder_stats(args.generated, args.n)
    print(f"model: {args.model} (iteration {ckpt['iteration']}), grid {cfg.grid.shape} x {cfg.grid.spacing_mm} mm,"
          f" smooth {cfg.smooth_mm} mm, threshold {cfg.threshold}\n")
    print(comparison_table({"real": real_stats, "real via grid": roundtrip, "generated": gen_stats}))
    probs = coarse_probs(G, [case_seed(args.seed, i) for i in range(len(gen_stats))])
    d = summarise(nearest_real_dice(probs, real_coarse).tolist())
    print(f"\nnearest-real Dice of generated masks (coarse grid): median {d['median']:.2f}, "
          f"q25 {d['q25']:.2f}, q75 {d['q75']:.2f}, max {d['max']:.2f}")
    # the same statistic for real masks against the *other* real masks, as a reference
    rr = torch.cat([real_coarse, real_coarse.flip(2)])[:, 0] > 0.5
    rr = rr.flatten(1).float()
    inter = rr[: len(files)] @ rr.T
    dice = 2 * inter / (rr[: len(files)].sum(1, keepdim=True) + rr.sum(1)[None]).clamp_min(1)
    idx = torch.arange(len(files))
    dice[idx, idx] = 0  # exclude itself
    dice[idx, idx + len(files)] = 0  # and its own mirror image
    d = summarise(dice.max(1).values.tolist())
    print(f"nearest-other-real Dice of real masks (coarse grid): median {d['median']:.2f}, "
          f"q25 {d['q25']:.2f}, q75 {d['q75']:.2f}, max {d['max']:.2f}")
    vols = (load_volume(f) for f in find_images(args.generated)[: args.n])
    bilateral = np.mean([_bilateral(v.data, v.affine) for v in vols])
    print(f"generated masks with tissue in both hemispheres (>= 1 ml each side): {bilateral:.2f}")
    print(f"\n({time.time() - t0:.0f} s)")


def _bilateral(mask: np.ndarray, affine: np.ndarray, min_ml: float = 1.0) -> bool:
    idx = np.argwhere(mask > 0.5)
    if len(idx) == 0:
        return False
    x = (affine[0, :3] @ idx.T) + affine[0, 3]
    vox_ml = abs(np.linalg.det(affine[:3, :3])) / 1000.0
    return bool((x < 0).sum() * vox_ml >= min_ml and (x > 0).sum() * vox_ml >= min_ml)


if __name__ == "__main__":
    main()
