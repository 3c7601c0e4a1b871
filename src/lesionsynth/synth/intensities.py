"""Per-class random Gaussian intensities (SynthSeg-style domain randomisation).

Each generation class k gets a mean ~ U(``mean``) and a standard deviation ~ U(``std``); the
within-class variation is Gaussian noise n with a correlation length (FWHM) ~ U(``texture_fwhm_vox``)
voxels (one per sample; coarse noise up-sampled), so textures range from white noise to blotches.
Soft label maps mix the classes voxel-wise (partial volume): ``I = sum_k p_k mu_k + (sum_k p_k sigma_k) n``;
hard label maps (many classes, e.g. FreeSurfer) use ``mu[index] + sigma[index] n``. One texture field is
shared by all classes: classes barely overlap, so this looks the same as one field per class, for the
cost of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lesionsynth.config import check_at_least, check_interval
from lesionsynth.labels.sources import LabelMap
from lesionsynth.ops import sample_seed, smooth_noise, uniform


@dataclass
class IntensityConfig:
    """Attributes: mean, std: ranges of the class means and standard deviations (0-255 scale).
    texture_fwhm_vox: range of the texture correlation length (FWHM) in voxels.
    lesion_min_contrast: draw the lesion mean at least this far from every non-background class mean
    (uniformly over what is left of ``mean``; the farthest point when nothing is); 0 = off, the
    paper's setting. Small training budgets (``tiny-cpu``) use it to learn faster.
    lesion_contrast_to: schema class names the minimum contrast applies to (default: every
    non-background class). ``[grey_matter, white_matter, partial_volume]`` leaves the lesion free to
    look like CSF, as a chronic infarct does in T1 and T2.
    tissue_min_contrast: draw the non-background classes' means in turn, each at least this far from
    those drawn before it (same rule); 0 = off. For label maps with few classes (the MNI default):
    every tissue boundary is then visible, which a small budget learns faster.
    class_means: per schema class name (``lesion`` for the lesion), the range its mean is drawn from
    instead of ``mean``; the minimum-contrast rules then draw within that range. Empty (default): every
    class uses ``mean``, the paper's setting. A curriculum's first stage can fix one contrast (e.g.
    T1-like: ``{grey_matter: [100, 120], white_matter: [160, 180], csf: [30, 50]}``) that a later stage
    frees; the draws of a case keep their order, so a class left out draws exactly as without it."""

    mean: tuple[float, float] = (0.0, 255.0)
    std: tuple[float, float] = (0.0, 16.0)
    texture_fwhm_vox: tuple[float, float] = (0.0, 2.0)
    lesion_min_contrast: float = 0.0
    lesion_contrast_to: list[str] | None = None
    tissue_min_contrast: float = 0.0
    class_means: dict[str, tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_interval("mean", self.mean)
        check_interval("std", self.std, 0.0)
        check_interval("texture_fwhm_vox", self.texture_fwhm_vox, 0.0)
        check_at_least("lesion_min_contrast", self.lesion_min_contrast, 0.0)
        check_at_least("tissue_min_contrast", self.tissue_min_contrast, 0.0)
        for name, pair in self.class_means.items():
            check_interval(f"class_means.{name}", pair)


@dataclass
class IntensityParams:
    """Drawn intensities: one entry per generation class, plus the lesion class last."""

    means: list[float] = field(default_factory=list)
    stds: list[float] = field(default_factory=list)
    fwhm_vox: float = 0.0
    seed: int = 0


def sample(gen: torch.Generator, cfg: IntensityConfig, n_classes: int,
           contrast_to: list[int] | None = None,
           ranges: list[tuple[float, float]] | None = None) -> IntensityParams:
    """Draw the class intensities.

    Args:
        gen: the case's generator.
        cfg: intensity priors.
        n_classes: generation classes + 1 (the lesion, last).
        contrast_to: generation classes the lesion must contrast with under ``lesion_min_contrast``
            (default: all but class 0, the background).
        ranges: the range of each class's mean (``n_classes`` pairs; default: ``cfg.mean`` for all), from
            ``cfg.class_means`` by the caller, who knows the classes' names.
    """
    if ranges is None:
        ranges = [cfg.mean] * n_classes
    if len(ranges) != n_classes:
        raise ValueError(f"intensities.sample: {len(ranges)} mean ranges for {n_classes} classes")
    p = IntensityParams()
    for k in range(n_classes):
        p.means.append(uniform(gen, *ranges[k]))
        p.stds.append(uniform(gen, *cfg.std))
    if cfg.tissue_min_contrast > 0:
        for k in range(2, n_classes - 1):
            p.means[k] = _contrasting_mean(gen, ranges[k], cfg.tissue_min_contrast, p.means[1:k])
    others = list(range(1, n_classes - 1)) if contrast_to is None else list(contrast_to)
    if cfg.lesion_min_contrast > 0 and others:
        p.means[-1] = _contrasting_mean(gen, ranges[-1], cfg.lesion_min_contrast, [p.means[k] for k in others])
    p.fwhm_vox = uniform(gen, *cfg.texture_fwhm_vox)
    p.seed = sample_seed(gen)
    return p


def _contrasting_mean(gen: torch.Generator, bounds: tuple[float, float], c: float, means: list[float]) -> float:
    """A mean uniform over the part of ``bounds`` at least ``c`` from every one of ``means``; when
    nothing is that far, the point farthest from all of them (one uniform draw either way)."""
    lo, hi = bounds
    cuts = sorted((m - c, m + c) for m in means)
    free: list[tuple[float, float]] = []
    start = lo
    for a, b in cuts:
        free.append((start, min(a, hi)))  # the gap before this cut; empty gaps are dropped below
        start = max(start, b)
    free = [(a, b) for a, b in [*free, (start, hi)] if b > a]
    u = uniform(gen, 0.0, 1.0)
    if not free:  # candidates: the range ends and the midpoints between neighbouring means
        pts = sorted(min(max(m, lo), hi) for m in means)
        cands = [lo, hi] + [(x + y) / 2 for x, y in zip(pts[:-1], pts[1:])]
        return max(cands, key=lambda v: min(abs(v - m) for m in means))
    t = u * sum(b - a for a, b in free)
    for a, b in free:
        if t <= b - a:
            return a + t
        t -= b - a
    return free[-1][1]


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
