"""Intensity normalisation, in one place: percentiles, z-score, the network-input normalisation shared by
training and ``predict``, and the [0, 1] scaling of the generative models' images."""

from __future__ import annotations

import numpy as np
import torch

CLIP_PERCENTILES = (0.5, 99.5)


def percentiles(image: torch.Tensor, qs: list[float], max_samples: int = 250_000) -> list[float]:
    """Percentiles from a regular sub-sample of voxels (exact for small images, fast for large)."""
    flat = image.reshape(-1)
    step = max(1, flat.numel() // max_samples)
    sub = flat[::step].float()
    q = torch.tensor([x / 100.0 for x in qs], device=sub.device)
    return torch.quantile(sub, q).tolist()


def zscore(image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """(image - mean) / std over ``mask`` (default: all voxels)."""
    v = image[mask] if mask is not None and mask.any() else image
    return (image - v.mean()) / v.std().clamp_min(1e-6)


def normalise_intensity(image: np.ndarray, method: str = "zscore") -> np.ndarray:
    """Intensity normalisation of the network's input, the same as training's (the chain's percentile
    clip, :mod:`lesionsynth.augment.normalize`, then :func:`zscore`).

    - ``zscore``: clip to the 0.5th and 99.5th percentiles (the middle of training's random clipping
      ranges; this robust clipping is the "histogram normalisation" step), then subtract the mean and
      divide by the standard deviation of all voxels (training z-scores its whole input crop).
    - ``none``: unchanged.

    The result does not depend on a linear rescaling ``a * image + b`` (a > 0) of the input.

    Args:
        image: (X, Y, Z) array: at inference, the box the windows cover (see :func:`network_input`).
        method: one of the above.

    Returns:
        The normalised float32 image.
    """
    x = np.asarray(image, dtype=np.float32)
    if method == "none":
        return x.copy()
    t = torch.from_numpy(np.ascontiguousarray(x))
    lo, hi = percentiles(t, list(CLIP_PERCENTILES))
    return zscore(t.clamp(lo, hi)).numpy().astype(np.float32, copy=False)


def scale_unit(image: torch.Tensor, mask: torch.Tensor | None = None, lower: float | None = None,
               upper: float = 99.5, max_samples: int = 200_000) -> torch.Tensor:
    """Scale an image to [0, 1] (clipped) by its percentiles over ``mask`` (default: all voxels).

    ``lower`` None: divide by the ``upper`` percentile (zero stays zero: the GAN translator's images);
    else map the ``lower`` to ``upper`` percentile range onto [0, 1] (the latent-diffusion images).
    """
    vals = image[mask] if mask is not None and mask.any() else image.reshape(-1)
    if lower is None:
        (hi,) = percentiles(vals, [upper], max_samples)
        return (image.float() / max(hi, 1e-6)).clamp(0, 1)
    lo, hi = percentiles(vals, [lower, upper], max_samples)
    return ((image.float() - lo) / max(hi - lo, 1e-6)).clamp(0, 1)
