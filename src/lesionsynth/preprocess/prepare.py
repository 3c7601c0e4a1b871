"""Preparing a scan for the network: RAS orientation, working voxel size, the foreground box the
windows have to cover, and intensity normalisation of that box.

Every step keeps track of the voxel-to-world affine, so network outputs can be brought back onto the
scan's own grid exactly (see :mod:`lesionsynth.infer.decide`). Used by ``predict``, training's validation on a folder
and the physics training source.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lesionsynth.io import reorient_to_ras, resample_to_grid, voxel_sizes
from lesionsynth.io.resample import spacing_grid
from lesionsynth.ops import gaussian_blur
from lesionsynth.preprocess.config import Preprocessing
from lesionsynth.preprocess.intensity import normalise_intensity, percentiles

FOREGROUND_FRACTION = 0.1


@dataclass
class Prepared:
    """A scan on its working grid (intensities not yet normalised).

    Attributes:
        image: (X, Y, Z) float32 intensities on the working grid.
        affine: working grid voxel-to-world matrix (RAS axis order, working spacing).
        foreground: (X, Y, Z) bool foreground mask on the working grid.
    """

    image: np.ndarray
    affine: np.ndarray
    foreground: np.ndarray


def foreground_mask(image: np.ndarray, smooth_vox: float = 2.0) -> np.ndarray:
    """Head/brain voxels: the image smoothed (Gaussian, ``smooth_vox`` voxels) above 10% of its
    robust (2nd to 98th percentile) intensity range.

    The smoothing keeps background noise (e.g. MRI's Rician noise) from scattering "foreground" voxels
    over the whole field of view. Works for MRI (background ~0) and CT (air ~-1000 HU) alike; used to
    find the box the windows must cover. A constant image is all foreground.
    """
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32))
    if smooth_vox > 0 and min(x.shape) > 1:
        x = gaussian_blur(x, smooth_vox)
    lo, hi = percentiles(x, [2.0, 98.0])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.ones(x.shape, dtype=bool)
    fg = (x > lo + FOREGROUND_FRACTION * (hi - lo)).numpy()
    return fg if fg.sum() >= 8 else np.ones(x.shape, dtype=bool)


def working_grid(affine: np.ndarray, shape: tuple[int, int, int], spacing: float | tuple[float, ...] = 1.0,
                 tol: float = 1e-3) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The grid the network runs on: same axis directions as ``affine``, voxel size ``spacing``.

    If the voxel size already matches (within ``tol`` mm), the grid is unchanged (no interpolation).
    Otherwise the new grid is centred on the scan and covers its whole field of view (its outermost
    voxel centres lie on or beyond the scan's).
    """
    affine = np.asarray(affine, dtype=np.float64)
    if np.all(np.abs(voxel_sizes(affine) - np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))) <= tol):
        return affine, tuple(int(s) for s in shape)  # type: ignore[return-value]
    return spacing_grid(affine, shape, spacing, cover=True)


def prepare(image: np.ndarray, affine: np.ndarray, preprocessing: Preprocessing | None = None) -> Prepared:
    """Reorient to RAS (exact), reslice to the working spacing (trilinear), find the foreground."""
    pre = preprocessing or Preprocessing()
    ras, ras_affine = reorient_to_ras(np.asarray(image, dtype=np.float32), np.asarray(affine, dtype=np.float64))
    work_affine, work_shape = working_grid(ras_affine, ras.shape, pre.spacing)
    if work_shape != tuple(ras.shape) or not np.allclose(work_affine, ras_affine, atol=1e-6):
        ras = resample_to_grid(ras, ras_affine, work_affine, work_shape, mode="linear",
                               padding_value=float(ras.min()))
    smooth = 2.0 / float(np.mean(voxel_sizes(work_affine)))  # 2 mm
    return Prepared(image=ras, affine=work_affine, foreground=foreground_mask(ras, smooth))


def network_input(prep: Prepared, box: tuple[slice, slice, slice], method: str = "zscore"
                  ) -> tuple[np.ndarray, float]:
    """The normalised box the windows run over, and the value to pad windows with beyond it.

    Normalising the box (the head plus a margin, widened to at least one window), not the whole
    field of view, mirrors training (which z-scores its input crop) and makes the result independent
    of how much empty space or neck a scan's field of view contains. Without foreground cropping the
    box is the whole volume.
    """
    crop = normalise_intensity(prep.image[box], method)
    return np.ascontiguousarray(crop), float(crop.min())


def bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...] | None:
    """Slices of the bounding box of ``mask`` grown by ``margin`` (clipped to the array); None if empty."""
    slices = []
    for ax in range(mask.ndim):
        other = tuple(i for i in range(mask.ndim) if i != ax)
        idx = np.flatnonzero(mask.any(axis=other))
        if idx.size == 0:
            return None
        slices.append(slice(max(int(idx[0]) - margin, 0), min(int(idx[-1]) + 1 + margin, mask.shape[ax])))
    return tuple(slices)


def plan_windows(foreground: np.ndarray | None, shape: tuple[int, int, int],
                 window: int | tuple[int, int, int], divisor: int, margin: int = 4
                 ) -> tuple[tuple[slice, slice, slice], tuple[int, int, int]]:
    """The box to run windows over, and the window size.

    The box is the foreground's bounding box plus ``margin`` (the whole volume if ``foreground`` is
    None), its sides rounded up to multiples of ``divisor``. If that fits in one window of at most as
    many voxels as a ``window`` window (no side longer than 1.5 x ``window``), the window is the box:
    one window per pass, e.g. 160 x 224 x 192 for a brain at 1 mm instead of two overlapping 192^3
    windows. Otherwise windows are ``min(window, box)`` per axis and slide. A box smaller than its
    window is widened with real image content where the volume allows (the rest is padded by MONAI).

    Args:
        foreground: bool mask of the volume, or None for the whole volume.
        shape: volume shape.
        window: largest window size, one number or per axis (rounded down to a multiple of
            ``divisor``, at least 2 x ``divisor`` so the network's coarsest level has 2 voxels).
        divisor: the network's input size divisor.
        margin: voxels added around the foreground box.

    Returns:
        (box as three slices, window size per axis).
    """
    least = 2 * divisor  # the network's coarsest level keeps >= 2 voxels per axis (instance norm)
    wmax = [max(least, (int(w) // divisor) * divisor) for w in np.broadcast_to(window, (3,))]
    fg_box = None if foreground is None else bounding_box(foreground, margin)
    lo = [0, 0, 0] if fg_box is None else [s.start for s in fg_box]
    hi = list(shape) if fg_box is None else [s.stop for s in fg_box]
    rounded = [max(least, -(-int(hi[ax] - lo[ax]) // divisor) * divisor) for ax in range(3)]  # rounded up
    single = (int(np.prod(rounded)) <= int(np.prod(wmax))
              and all(r <= 1.5 * w for r, w in zip(rounded, wmax, strict=True)))
    box, roi = [], []
    for ax in range(3):
        n = hi[ax] - lo[ax]
        w = rounded[ax] if single else min(wmax[ax], rounded[ax])
        if n < w:  # widen with real content, centred, within the volume
            want = min(w, shape[ax])
            start = lo[ax] - (want - n) // 2
            start = max(0, min(start, shape[ax] - want))
            lo[ax], hi[ax] = start, start + want
        box.append(slice(lo[ax], hi[ax]))
        roi.append(w)
    return tuple(box), tuple(roi)  # type: ignore[return-value]
