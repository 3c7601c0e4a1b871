"""Real lesion masks from a folder, on any grid, resampled through the affines."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lesionsynth.errors import InputError
from lesionsynth.io.nifti import find_images, load_volume
from lesionsynth.io.resample import resample_to_grid
from lesionsynth.preprocess.prepare import bounding_box


class LesionFolder:
    """A folder (or list) of binary lesion masks.

    Masks are read lazily and resampled onto a requested grid through both affines (trilinear, then
    > 0.5), optionally mirrored left-right in world space (x -> -x). Nothing assumes a shape. Each mask is
    cached per grid as its bounding box only (a boolean crop), so a long run over many masks, flips and label
    maps keeps a few bytes per lesion voxel instead of a whole grid per entry.

    Args:
        source: folder, glob pattern or list of files.
    """

    def __init__(self, source: str | Path | list[str | Path]):
        items = source if isinstance(source, list) else [source]
        for it in items:
            p = Path(it)
            if not p.exists() and not any(c in str(it) for c in "*?["):
                raise InputError(f"{p}: lesion folder not found")
        self.files = find_images(items)
        if not self.files:
            raise InputError(f"{source}: no lesion masks (.nii/.nii.gz) found")
        self._cache: dict[tuple, tuple[tuple[slice, ...], torch.Tensor] | None] = {}

    def __len__(self) -> int:
        return len(self.files)

    def load(self, i: int, affine: np.ndarray, shape: tuple[int, int, int], flip: bool = False,
             cache: bool = True, placement: np.ndarray | None = None) -> torch.Tensor:
        """Mask ``i`` on the grid (affine, shape) as a float tensor in {0, 1}.

        ``placement`` (4x4, mask world -> grid world; e.g. :func:`lesionsynth.lesions.placement.fit_to_map`)
        moves the mask before it is resampled; None places it by world coordinates as it is.
        """
        if placement is not None:
            affine = np.linalg.inv(placement) @ np.asarray(affine, dtype=np.float64)  # the grid in mask space
        key = (i, flip, tuple(np.round(np.asarray(affine), 4).ravel()), tuple(shape))
        if cache and key in self._cache:
            return _uncrop(self._cache[key], shape)
        vol = load_volume(self.files[i])
        data = vol.data
        if data.max() <= 0:
            raise InputError(f"{self.files[i]}: lesion mask is empty")
        m = (data > 0.5 * data.max()).astype(np.float32)
        src_affine = vol.affine
        if flip:
            src_affine = np.diag([-1.0, 1.0, 1.0, 1.0]) @ src_affine
        t = (resample_to_grid(torch.from_numpy(m), src_affine, affine, shape, mode="linear") > 0.5).float()
        if cache:
            self._cache[key] = _crop(t)
        return t


def _crop(mask: torch.Tensor) -> tuple[tuple[slice, ...], torch.Tensor] | None:
    """A {0, 1} mask as (its bounding box, the boolean crop); None when empty."""
    box = bounding_box(mask.numpy() > 0)
    return None if box is None else (box, mask[box].bool())


def _uncrop(entry: tuple[tuple[slice, ...], torch.Tensor] | None, shape: tuple[int, int, int]) -> torch.Tensor:
    """The float mask on the whole grid from a :func:`_crop` entry (a new tensor each call)."""
    t = torch.zeros(tuple(shape), dtype=torch.float32)
    if entry is not None:
        box, crop = entry
        t[box] = crop.float()
    return t
