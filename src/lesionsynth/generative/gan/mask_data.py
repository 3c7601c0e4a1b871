"""Real lesion masks on the mask GAN's coarse grid, and the batches the critic sees."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative.gan.grid import MaskGrid
from lesionsynth.lesions import LesionFolder
from lesionsynth.log import tqdm


def load_coarse_masks(source: str | Path | LesionFolder, grid: MaskGrid,
                      progress: bool = True) -> torch.Tensor:
    """All masks of a folder as lesion volume fractions on the coarse grid, (N, 1, X, Y, Z) float32.

    Each mask is read onto the fine (about 1 mm) grid through the affines (binary, see
    :class:`~lesionsynth.lesions.LesionFolder`) and average-pooled by ``grid.factor``.

    Raises:
        InputError: the folder is missing or has no masks, a mask is empty or lies entirely outside
            the grid.
    """
    folder = source if isinstance(source, LesionFolder) else LesionFolder(source)
    fine_affine, fine_shape = grid.fine()
    out = []
    for i in tqdm(range(len(folder)), desc="reading masks", disable=None if progress else True,
                  leave=False):
        m = folder.load(i, fine_affine, fine_shape, cache=False)
        if m.sum() == 0:
            raise InputError(f"{folder.files[i]}: lesion lies entirely outside the mask GAN grid "
                             f"(centre {grid.centre_mm} mm, {grid.shape} x {grid.spacing_mm} mm)")
        coarse = F.avg_pool3d(m[None, None], grid.factor)[0] if grid.factor > 1 else m[None]
        out.append(coarse.float())
    return torch.stack(out)


def to_one_hemisphere(masks: torch.Tensor, grid: MaskGrid, side: str = "left") -> torch.Tensor:
    """Mirror every mask whose centre of mass is in the other hemisphere onto ``side``.

    A generator trained on masks of both sides (or with flip augmentation) learns a two-mode
    distribution and can mix the modes into bilateral masks, which real strokes of one arterial territory
    are not; training on one side and mirroring at use (``build-dataset`` ``flip_p``) avoids that.
    Needs a grid centred on x = 0 (the flip is then an array flip).
    """
    check_flip_grid(grid, 1.0)
    x = torch.as_tensor(grid.affine()[0, 0] * torch.arange(grid.shape[0]) + grid.affine()[0, 3], dtype=masks.dtype)
    cx = (masks[:, 0] * x[:, None, None]).flatten(1).sum(1) / masks[:, 0].flatten(1).sum(1).clamp_min(1e-9)
    wrong = cx > 0 if side == "left" else cx < 0
    return torch.where(wrong[:, None, None, None, None], masks.flip(2), masks)


def check_flip_grid(grid: MaskGrid, flip_p: float) -> None:
    """Left-right flips are array flips only on a grid centred on x = 0."""
    if flip_p > 0 and abs(grid.centre_mm[0]) > 1e-6:
        raise ConfigError(f"grid.centre_mm: x must be 0 for left-right flip augmentation (flip_p={flip_p}), "
                          f"got {grid.centre_mm[0]}")


def real_batch(masks: torch.Tensor, batch_size: int, flip_p: float, gen: torch.Generator) -> torch.Tensor:
    """A batch of real masks drawn with replacement, each mirrored left-right with probability ``flip_p``."""
    idx = torch.randint(0, masks.shape[0], (batch_size,), generator=gen, device=gen.device).to(masks.device)
    flips = (torch.rand(batch_size, generator=gen, device=gen.device) < flip_p).to(masks.device)
    x = masks[idx]
    return torch.where(flips[:, None, None, None, None], x.flip(2), x)
