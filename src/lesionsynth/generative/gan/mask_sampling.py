"""Sampling binary lesion masks from a trained mask GAN onto a fine grid (default: MNI 1 mm).

Sample ``i`` of a run seeded ``seed`` uses the latent vector drawn from ``case_seed(seed, i)``, so a
mask depends only on (model, seed, i): not on batching, device order or how many masks are written.
The coarse lesion probability is resampled through the affines onto the output grid (trilinear),
smoothed with a Gaussian of ``smooth_mm``, thresholded at ``threshold`` and restricted to the brain and,
for a model trained on one hemisphere (``hemisphere`` left or right), to the side of x = 0 that holds the
mask's centre of mass (a blob spilling over the midline is cut there; real territorial strokes do not cross it).
A mask smaller than ``min_volume_ml`` is redrawn from ``case_seed(case_seed(seed, i), attempt)``.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lesionsynth.errors import InputError
from lesionsynth.generative.gan.grid import MaskGrid
from lesionsynth.generative.gan.mask_gan import MaskGANConfig, latent, load_mask_generator
from lesionsynth.generative.gan.nets import MaskGenerator
from lesionsynth.io.atomic import remove_stale_temporaries, write_text_atomic
from lesionsynth.io.nifti import is_complete_nifti, save_volume, voxel_sizes
from lesionsynth.io.resample import resample_to_grid
from lesionsynth.log import tqdm
from lesionsynth.ops import case_seed, gaussian_blur

MAX_ATTEMPTS = 20


@dataclass
class OutputGrid:
    """Where sampled masks go: a grid and the brain mask they are restricted to."""

    affine: np.ndarray
    shape: tuple[int, int, int]
    brain: torch.Tensor  # bool (X, Y, Z)

    def world_x(self) -> torch.Tensor:
        """World x (mm, RAS: negative = left) of every voxel, (X, Y, Z)."""
        a = [float(v) for v in self.affine[0]]
        i, j, k = (torch.arange(n, dtype=torch.float32) for n in self.shape)
        return a[0] * i[:, None, None] + a[1] * j[None, :, None] + a[2] * k[None, None, :] + a[3]


def one_hemisphere(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``mask`` without its voxels across the midline (x = 0) from its centre of mass."""
    total = float(mask.sum())
    if total == 0:
        return mask
    left = float((mask * x.to(mask.device)).sum()) / total < 0
    return mask * ((x < 0) if left else (x > 0)).to(mask.device, mask.dtype)


@functools.lru_cache(maxsize=1)
def mni_output_grid() -> OutputGrid:
    """The default label map's 1 mm MNI grid (nilearn's MNI152 2009, 197 x 233 x 189) and brain mask."""
    from lesionsynth.labels import mni_default

    lm = mni_default()
    return OutputGrid(lm.affine, lm.shape, lm.brain_mask())


@torch.no_grad()
def coarse_probs(G: MaskGenerator, seeds: list[int], device: torch.device | str = "cpu") -> torch.Tensor:
    """Lesion probabilities (N, X, Y, Z) on the coarse grid for the given per-sample seeds."""
    G.eval()
    z = torch.stack([latent(s, G.latent_dim) for s in seeds]).to(device)
    return torch.sigmoid(G(z))[:, 0].float()


def to_grid(prob: torch.Tensor, grid: MaskGrid, out: OutputGrid, smooth_mm: float,
            threshold: float) -> torch.Tensor:
    """Coarse probability (X, Y, Z) -> binary mask (float {0, 1}) on the output grid, inside the brain."""
    fine = resample_to_grid(prob, grid.affine(), out.affine, out.shape, mode="linear")
    if smooth_mm > 0:
        fine = gaussian_blur(fine, [smooth_mm / v for v in voxel_sizes(out.affine)])
    return ((fine > threshold) & out.brain.to(fine.device)).float()


def sample_masks(G: MaskGenerator, cfg: MaskGANConfig, indices: list[int], seed: int, out: OutputGrid,
                 device: torch.device | str = "cpu") -> Iterator[tuple[int, torch.Tensor, int]]:
    """Yield ``(index, mask, attempts)`` for each sample index (see the module docstring)."""
    voxel_ml = float(np.prod(voxel_sizes(out.affine))) / 1000.0
    x = out.world_x() if cfg.hemisphere != "none" else None
    for i in indices:
        base = case_seed(seed, i)
        for attempt in range(MAX_ATTEMPTS):
            s = base if attempt == 0 else case_seed(base, attempt)
            p = coarse_probs(G, [s], device)[0].cpu()
            m = to_grid(p, cfg.grid, out, cfg.smooth_mm, cfg.threshold)
            if x is not None:  # trained on one side: a blob spilling over the midline is cut there
                m = one_hemisphere(m, x)
            if float(m.sum()) * voxel_ml >= cfg.min_volume_ml:
                yield i, m, attempt + 1
                break
        else:
            raise InputError(f"mask GAN: {MAX_ATTEMPTS} draws for sample {i} all gave masks under "
                             f"{cfg.min_volume_ml} ml; the model looks untrained (train it longer)")


def write_masks(model: str | Path, out_dir: str | Path, n: int, seed: int = 0,
                device: torch.device | str = "cpu", progress: bool = True,
                output: OutputGrid | None = None) -> dict:
    """Write ``n`` masks ``mask_00000.nii.gz`` ... to ``out_dir`` (uint8 NIfTI, output grid's affine).

    Existing mask files are kept (re-running finishes an interrupted run). ``samples.json`` records the
    model, seed, count and the number of redraws. Returns that summary.
    """
    G, cfg, ckpt = load_mask_generator(model, device)
    out = output or mni_output_grid()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir)
    todo = [i for i in range(n) if not is_complete_nifti(out_dir / f"mask_{i:05d}.nii.gz")]
    redraws = 0
    bar = tqdm(total=n, initial=n - len(todo), desc="sampling masks", disable=None if progress else True)
    for i, m, attempts in sample_masks(G, cfg, todo, seed, out, device):
        save_volume(out_dir / f"mask_{i:05d}.nii.gz", m.cpu().numpy().astype(np.uint8), out.affine)
        redraws += attempts - 1
        bar.update(1)
    bar.close()
    summary = {"model": str(model), "iteration": int(ckpt.get("iteration", 0)), "seed": int(seed), "n": int(n),
               "redraws_this_call": redraws, "smooth_mm": cfg.smooth_mm, "threshold": cfg.threshold,
               "min_volume_ml": cfg.min_volume_ml, "grid_shape": list(out.shape)}
    write_text_atomic(out_dir / "samples.json", json.dumps(summary, indent=1) + "\n")
    return summary
