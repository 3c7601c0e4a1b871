"""Per-class random Gaussian intensities (SynthSeg-style domain randomisation).

Each generation class k gets a mean ~ U(``mean``) and a standard deviation ~ U(``std``); the
within-class variation is Gaussian noise n with a correlation length (FWHM) ~ U(``texture_fwhm_vox``)
voxels (one per sample; coarse noise up-sampled), so textures range from white noise to blotches.
Soft label maps mix the classes voxel-wise (partial volume): ``I = sum_k p_k mu_k + (sum_k p_k sigma_k) n``;
hard label maps
(many classes, e.g. FreeSurfer) use ``mu[index] + sigma[index] n``. One texture field is shared by
all classes: classes barely overlap, so this looks the same as one field per class and costs one
field instead of one per class.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lesionsynth.labels.sources import LabelMap
from lesionsynth.ops import sample_seed, smooth_noise, uniform


@dataclass
class IntensityConfig:
    """Attributes: mean, std: ranges of the class means and standard deviations (0-255 scale).
    texture_fwhm_vox: range of the texture correlation length (FWHM) in voxels.
    lesion_min_contrast: redraw the lesion mean until it differs by at least this much from every
    non-background class mean (0 = off, the paper's setting); small training budgets (``tiny-cpu``)
    use it to learn faster."""

    mean: tuple[float, float] = (0.0, 255.0)
    std: tuple[float, float] = (0.0, 16.0)
    texture_fwhm_vox: tuple[float, float] = (0.0, 2.0)
    lesion_min_contrast: float = 0.0


@dataclass
class IntensityParams:
    """Drawn intensities: one entry per generation class, plus the lesion class last."""

    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    fwhm_vox: float = 0.0
    seed: int = 0


def sample(gen: torch.Generator, cfg: IntensityConfig, n_classes: int) -> IntensityParams:
    p = IntensityParams()
    for _ in range(n_classes):
        p.means.append(uniform(gen, *cfg.mean))
        p.stds.append(uniform(gen, *cfg.std))
    if cfg.lesion_min_contrast > 0 and n_classes > 2:
        # the last class is the lesion; class 0 the background
        for _ in range(100):
            if min(abs(p.means[-1] - m) for m in p.means[1:-1]) >= cfg.lesion_min_contrast:
                break
            p.means[-1] = uniform(gen, *cfg.mean)
    p.fwhm_vox = uniform(gen, *cfg.texture_fwhm_vox)
    p.seed = sample_seed(gen)
    return p


def _texture(shape: tuple[int, ...], fwhm: float, gen: torch.Generator, device) -> torch.Tensor:
    """Unit-variance noise with correlation length ``fwhm`` voxels.

    Below one voxel: white noise. Otherwise Gaussian noise on a grid of spacing ``fwhm`` voxels,
    trilinearly up-sampled (``bench_ops.py``: ~5x cheaper than blurring full-resolution noise, and as
    good for randomising textures).
    """
    if fwhm < 1.0:
        return torch.randn(shape, generator=gen, device=device)
    tex = smooth_noise(shape, fwhm, gen, device)
    # interpolation lowers the variance between control points: restore unit sd (from a sub-sample)
    return tex.mul_(1.0 / tex.reshape(-1)[::97].std().clamp_min(1e-6))


def render_tissue(p: IntensityParams, lm: LabelMap) -> torch.Tensor:
    """Image of the healthy label map (X, Y, Z) from drawn intensities (generation classes only)."""
    dev = lm.device
    gen = torch.Generator(device=dev).manual_seed(p.seed)
    G = lm.num_gen
    mu = torch.tensor(p.means[:G], device=dev)
    sd = torch.tensor(p.stds[:G], device=dev)
    tex = _texture(lm.shape, p.fwhm_vox, gen, dev)
    if lm.probs is not None:
        probs = lm.probs.reshape(G, -1)
        mean = (mu @ probs).reshape(lm.shape)
        std = (sd @ probs).reshape(lm.shape)
        return mean.add_(std.mul_(tex))
    assert lm.index is not None
    return mu[lm.index] + sd[lm.index] * tex


def render_lesion(p: IntensityParams, shape: tuple[int, ...], device) -> torch.Tensor:
    """The lesion class's intensity field (last class of ``p``) on a (sub-)volume."""
    gen = torch.Generator(device=device).manual_seed(p.seed + 1)
    return p.means[-1] + p.stds[-1] * _texture(shape, p.fwhm_vox, gen, device)
