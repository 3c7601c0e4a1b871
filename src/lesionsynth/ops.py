"""Small tensor operations shared by the generators and transforms (CPU or GPU tensors)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from monai.networks.layers import gaussian_1d, separable_filtering

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian_blur(x: torch.Tensor, sigma_vox: float | Sequence[float], truncated: float = 3.0) -> torch.Tensor:
    """Separable Gaussian blur of (X, Y, Z) or (C, X, Y, Z) data (MONAI's separable filtering).

    ``sigma_vox`` is per axis in voxels; axes with sigma < 0.05 are left alone.
    """
    sig = [float(s) for s in (sigma_vox if isinstance(sigma_vox, Sequence) else [sigma_vox] * 3)]
    if max(sig) < 0.05:
        return x
    squeeze = x.ndim == 3
    t = x[None, None] if squeeze else x[None]
    kernels = []
    for s in sig:
        if s < 0.05:
            kernels.append(torch.ones(1, device=x.device, dtype=x.dtype))
        else:
            k = gaussian_1d(torch.tensor(s), truncated=truncated, approx="sampled", normalize=True)
            kernels.append(k.to(device=x.device, dtype=x.dtype))
    out = separable_filtering(t, kernels, mode="replicate")
    return out[0, 0] if squeeze else out[0]


def smooth_noise(shape: Sequence[int], scale_vox: float | Sequence[float], gen: torch.Generator,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Zero-mean, unit-sd smooth random field: coarse Gaussian noise, trilinearly up-sampled.

    Args:
        shape: output spatial shape.
        scale_vox: distance between control points, in voxels (per axis or one value).
        gen: generator; the noise is drawn on its device.
        device: output device (default: the generator's).
    """
    sc = list(scale_vox) if isinstance(scale_vox, Sequence) else [scale_vox] * len(shape)
    coarse = [max(2, int(math.ceil(s / max(c, 1e-3))) + 1) for s, c in zip(shape, sc)]
    g = torch.randn(coarse, generator=gen, device=gen.device)
    if device is not None:
        g = g.to(device)
    f = F.interpolate(g[None, None], size=tuple(shape), mode="trilinear", align_corners=True)[0, 0]
    return (f - f.mean()) / f.std().clamp_min(1e-6)


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed) % (2**63 - 1))


def sample_seed(gen: torch.Generator) -> int:
    """Draw a sub-seed (for a field generated later, on any device)."""
    return int(torch.randint(0, 2**31 - 1, (), generator=gen))


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a run seeded with ``seed`` (independent of workers or order)."""
    # splitmix64-style mixing so neighbouring (seed, index) pairs give unrelated streams
    z = (int(seed) * 0x9E3779B97F4A7C15 + int(index) + 0x632BE59BD9B4E019) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    """One float drawn uniformly from [lo, hi] with ``gen``."""
    return float(lo + (hi - lo) * torch.rand((), generator=gen, device=gen.device).item())


def bernoulli(gen: torch.Generator, p: float) -> bool:
    """True with probability ``p``."""
    return bool(torch.rand((), generator=gen, device=gen.device).item() < p)
