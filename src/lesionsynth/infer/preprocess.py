"""Preparing a scan for the network: RAS orientation, working voxel size, intensity normalisation and
the foreground box the windows have to cover.

Every step keeps track of the voxel-to-world affine, so network outputs can be brought back onto the
scan's own grid exactly (see :mod:`lesionsynth.infer.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesionsynth.infer.config import Preprocessing
from lesionsynth.io import reorient_to_ras, resample_to_grid, voxel_sizes

CLIP_PERCENTILES = (0.5, 99.5)
FOREGROUND_FRACTION = 0.1


@dataclass
class Prepared:
    """A scan on its working grid, ready for the network.

    Attributes:
        image: (X, Y, Z) float32 normalised intensities on the working grid.
        affine: working grid voxel-to-world matrix (RAS axis order, working spacing).
        foreground: (X, Y, Z) bool foreground mask on the working grid.
        background: normalised value of the background (used to pad windows).
    """

    image: np.ndarray
    affine: np.ndarray
    foreground: np.ndarray
    background: float


def foreground_mask(image: np.ndarray) -> np.ndarray:
    """Head/brain voxels: above 10% of the robust (2nd to 98th percentile) intensity range.

    Works for MRI (background ~0) and CT (air ~-1000 HU) alike. A constant image is all foreground.
    """
    x = np.asarray(image, dtype=np.float32)
    lo, hi = np.percentile(x, [2.0, 98.0])
    if hi <= lo:
        lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.ones(x.shape, dtype=bool)
    fg = x > lo + FOREGROUND_FRACTION * (hi - lo)
    return fg if fg.sum() >= 8 else np.ones(x.shape, dtype=bool)


def normalise_intensity(image: np.ndarray, method: str = "zscore") -> tuple[np.ndarray, np.ndarray]:
    """Intensity normalisation shared by training and inference.

    - ``zscore``: clip below at the 0.5th percentile of the whole image and above at the 99.5th
      percentile of the foreground (:func:`foreground_mask`), then subtract the mean and divide by the
      standard deviation of the foreground.
    - ``histogram``: clip as above, map foreground intensities through their empirical CDF (histogram
      equalisation, 1024 bins), background to 0, then z-score as above.
    - ``none``: unchanged.

    The result does not depend on a linear rescaling ``a * image + b`` (a > 0) of the input.

    Args:
        image: (X, Y, Z) array.
        method: one of the above.

    Returns:
        (normalised float32 image, foreground mask).
    """
    x = np.asarray(image, dtype=np.float32)
    if method == "none":
        return x.copy(), foreground_mask(x)
    fg = foreground_mask(x)
    lo = float(np.percentile(x, CLIP_PERCENTILES[0]))
    hi = max(lo, float(np.percentile(x[fg], CLIP_PERCENTILES[1])))
    x = np.clip(x, lo, hi)
    if method == "histogram" and hi > lo:
        vals = x[fg]
        hist, edges = np.histogram(vals, bins=1024, range=(lo, hi))
        cdf = np.cumsum(hist).astype(np.float64)
        cdf /= max(cdf[-1], 1.0)
        x = np.interp(x, edges[1:], cdf).astype(np.float32)
        x[~fg] = 0.0
    vals = x[fg]
    mu = float(vals.mean())
    sd = float(vals.std())
    out = (x - mu) / (sd if sd > 1e-8 else 1.0)
    return out.astype(np.float32, copy=False), fg


def working_grid(affine: np.ndarray, shape: tuple[int, int, int], spacing: float | tuple[float, ...] = 1.0,
                 tol: float = 1e-3) -> tuple[np.ndarray, tuple[int, int, int]]:
    """The grid the network runs on: same axis directions as ``affine``, voxel size ``spacing``.

    If the voxel size already matches (within ``tol`` mm), the grid is unchanged (no interpolation).
    Otherwise the new grid is centred on the scan and covers its whole field of view (its outermost
    voxel centres lie on or beyond the scan's).
    """
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    vs = voxel_sizes(affine)
    shape = tuple(int(s) for s in shape)
    if np.all(np.abs(vs - sp) <= tol):
        return np.asarray(affine, dtype=np.float64), shape  # type: ignore[return-value]
    extent = vs * (np.asarray(shape) - 1)
    new_shape = tuple(int(np.ceil(e / s - 1e-6)) + 1 for e, s in zip(extent, sp, strict=True))
    direction = np.asarray(affine, dtype=np.float64)[:3, :3] / vs
    new = np.eye(4)
    new[:3, :3] = direction * sp
    centre = np.asarray(affine, dtype=np.float64) @ np.append((np.asarray(shape) - 1) / 2.0, 1.0)
    new[:3, 3] = centre[:3] - new[:3, :3] @ ((np.asarray(new_shape) - 1) / 2.0)
    return new, new_shape  # type: ignore[return-value]


def prepare(image: np.ndarray, affine: np.ndarray, preprocessing: Preprocessing | None = None) -> Prepared:
    """Reorient to RAS (exact), reslice to the working spacing (trilinear), normalise intensities."""
    pre = preprocessing or Preprocessing()
    data = np.asarray(image, dtype=np.float32)
    ras, ras_affine = reorient_to_ras(data, np.asarray(affine, dtype=np.float64))
    work_affine, work_shape = working_grid(ras_affine, ras.shape, pre.spacing)
    if work_shape != tuple(ras.shape) or not np.allclose(work_affine, ras_affine, atol=1e-6):
        ras = resample_to_grid(ras, ras_affine, work_affine, work_shape, mode="linear",
                               padding_value=float(ras.min()))
    norm, fg = normalise_intensity(ras, pre.normalisation)
    return Prepared(image=norm, affine=work_affine, foreground=fg, background=float(norm.min()))


def round_up(n: int, divisor: int) -> int:
    return int(-(-int(n) // divisor) * divisor)


def plan_windows(foreground: np.ndarray | None, shape: tuple[int, int, int], window: int, divisor: int,
                 margin: int = 4) -> tuple[tuple[slice, slice, slice], tuple[int, int, int]]:
    """The box to run windows over, and the window size.

    The box is the foreground's bounding box plus ``margin`` (the whole volume if ``foreground`` is
    None). Per axis the window is ``min(window, box rounded up to the divisor)``; a box smaller than its
    window is widened with real image content where the volume allows (the rest is padded by MONAI).

    Args:
        foreground: bool mask of the volume, or None for the whole volume.
        shape: volume shape.
        window: largest window edge (rounded down to a multiple of ``divisor``, at least ``divisor``).
        divisor: the network's input size divisor.
        margin: voxels added around the foreground box.

    Returns:
        (box as three slices, window size per axis).
    """
    wmax = max(divisor, (int(window) // divisor) * divisor)
    if foreground is not None and foreground.any():
        lo = []
        hi = []
        for ax in range(3):
            other = tuple(a for a in range(3) if a != ax)
            prof = np.flatnonzero(foreground.any(axis=other))
            lo.append(max(0, int(prof[0]) - margin))
            hi.append(min(shape[ax], int(prof[-1]) + 1 + margin))
    else:
        lo, hi = [0, 0, 0], list(shape)
    box = []
    roi = []
    for ax in range(3):
        n = hi[ax] - lo[ax]
        w = min(wmax, round_up(n, divisor))
        if n < w:  # widen with real content, centred, within the volume
            want = min(w, shape[ax])
            start = lo[ax] - (want - n) // 2
            start = max(0, min(start, shape[ax] - want))
            lo[ax], hi[ax] = start, start + want
        box.append(slice(lo[ax], hi[ax]))
        roi.append(w)
    return tuple(box), tuple(roi)  # type: ignore[return-value]
