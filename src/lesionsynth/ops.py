"""Small tensor operations shared by the generators and transforms (CPU or GPU tensors)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.layers import gaussian_1d, separable_filtering

FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian_blur(x: torch.Tensor, sigma_vox: float | Sequence[float], method: str = "auto") -> torch.Tensor:
    """Gaussian blur of (X, Y, Z) or (C, X, Y, Z) data, edges replicated.

    Two implementations: MONAI's separable spatial filtering (``"spatial"``), and multiplication by
    the Gaussian's transfer function in the Fourier domain after replicate-padding by 3 sigma
    (``"fft"``). ``benchmarks/bench_ops.py`` measures the FFT route 3-5x faster on 192^3 volumes on
    CPU, so ``"auto"`` uses it for volumes of 64^3 voxels and more. ``sigma_vox`` is per axis in voxels;
    axes with sigma < 0.05 are left alone.
    """
    sig = [float(s) for s in (sigma_vox if isinstance(sigma_vox, Sequence) else [sigma_vox] * 3)]
    if max(sig) < 0.05:
        return x
    squeeze = x.ndim == 3
    t = x[None, None] if squeeze else x[None]
    if method == "fft" or (method == "auto" and t.shape[-3:].numel() >= 64**3):
        out = _fft_blur(t, sig)
    else:
        kernels = [torch.ones(1) if s < 0.05 else
                   gaussian_1d(torch.tensor(s), truncated=3.0, approx="sampled", normalize=True) for s in sig]
        out = separable_filtering(t, [k.to(device=x.device, dtype=x.dtype) for k in kernels], mode="replicate")
    return out[0, 0] if squeeze else out[0]


def _fft_blur(t: torch.Tensor, sig: list[float]) -> torch.Tensor:
    pads = [int(math.ceil(3 * s)) if s >= 0.05 else 0 for s in sig]
    pad_arg = [r for r in reversed(pads) for _ in range(2)]  # F.pad order: last axis first, both sides
    tp = F.pad(t.float(), pad_arg, mode="replicate") if any(pads) else t.float()
    shape = tp.shape[-3:]
    spec = torch.fft.rfftn(tp, dim=(-3, -2, -1))
    transfer = None
    for ax, s in enumerate(sig):
        n = shape[ax]
        f = torch.fft.rfftfreq(n, device=t.device) if ax == 2 else torch.fft.fftfreq(n, device=t.device)
        h = torch.exp(-2.0 * (math.pi * s * f) ** 2).view([-1 if a == ax else 1 for a in range(3)])
        transfer = h if transfer is None else transfer * h
    out = torch.fft.irfftn(spec * transfer, s=tuple(shape), dim=(-3, -2, -1))
    sl = tuple(slice(r, r + n) for r, n in zip(pads, t.shape[-3:]))
    return out[(..., *sl)].to(t.dtype)


def smooth_noise(shape: Sequence[int], scale_vox: float | Sequence[float], gen: torch.Generator,
                 device: torch.device | str | None = None) -> torch.Tensor:
    """Smooth random field: coarse Gaussian noise (normalised to zero mean, unit sd), trilinearly up-sampled.

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
    g = (g - g.mean()) / g.std().clamp_min(1e-6)  # normalise the (small) coarse field: cheaper
    return F.interpolate(g[None, None], size=tuple(shape), mode="trilinear", align_corners=True)[0, 0]


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with ``seed``."""
    return torch.Generator(device=device).manual_seed(int(seed) % (2**63 - 1))


def sample_seed(gen: torch.Generator) -> int:
    """Draw a sub-seed (for a field generated later, on any device)."""
    return int(torch.randint(0, 2**31 - 1, (), generator=gen))


# splitmix64-style mixing so neighbouring (seed, index) pairs give unrelated streams
_M64, _GOLDEN, _OFFSET = 0xFFFFFFFFFFFFFFFF, 0x9E3779B97F4A7C15, 0x632BE59BD9B4E019
_MIX1, _MIX2 = 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def case_seed(seed: int, index: int) -> int:
    """The seed of case ``index`` of a run seeded with ``seed`` (independent of workers or order)."""
    z = (int(seed) * _GOLDEN + int(index) + _OFFSET) & _M64
    z = ((z ^ (z >> 30)) * _MIX1) & _M64
    z = ((z ^ (z >> 27)) * _MIX2) & _M64
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


def case_seeds(seed: int, indices: np.ndarray) -> np.ndarray:
    """:func:`case_seed` of every index at once (uint64 array; uint64 arithmetic wraps like ``& _M64``)."""
    z = np.asarray(indices, dtype=np.uint64) + np.uint64((int(seed) * _GOLDEN + _OFFSET) & _M64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return (z ^ (z >> np.uint64(31))) & np.uint64(0x7FFFFFFFFFFFFFFF)


def uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    """One float drawn uniformly from [lo, hi] with ``gen``."""
    return float(lo + (hi - lo) * torch.rand((), generator=gen, device=gen.device).item())


def bernoulli(gen: torch.Generator, p: float) -> bool:
    """True with probability ``p``."""
    return bool(torch.rand((), generator=gen, device=gen.device).item() < p)


def rotation_matrix(angles_deg: list[float]) -> np.ndarray:
    """The 3x3 rotation ``Rz @ Ry @ Rx`` by ``angles_deg`` (degrees) about the x, y and z axes (float64;
    the spatial augmentation, the physics scanner grids and the procedural lesions' orientations)."""
    a, b, c = (math.radians(x) for x in angles_deg)
    Rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    Ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    Rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx
