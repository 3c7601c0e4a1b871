"""Random skull-stripping: zero the image outside a (randomly dilated or eroded) brain mask.

The brain mask is taken from the labels (every non-background class), so it follows the deformed
anatomy exactly; the labels themselves are unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.ops import bernoulli


@dataclass
class SkullStripConfig:
    """Attributes: p: probability (paper: 30%). max_erode/max_dilate: voxels."""

    p: float = 0.3
    max_erode: int = 2
    max_dilate: int = 3

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("max_erode", self.max_erode, 0)
        check_at_least("max_dilate", self.max_dilate, 0)


@dataclass
class SkullStripParams:
    applied: bool = False
    radius: int = 0  # > 0 dilate, < 0 erode


def sample(gen: torch.Generator, cfg: SkullStripConfig, affine: object = None) -> SkullStripParams:
    if not bernoulli(gen, cfg.p):
        return SkullStripParams()
    r = int(torch.randint(-cfg.max_erode, cfg.max_dilate + 1, (), generator=gen))
    return SkullStripParams(applied=True, radius=r)


def brain_mask(labels: torch.Tensor, background: int = 0, radius: int = 0) -> torch.Tensor:
    """Non-background mask of ``labels``, dilated (radius > 0) or eroded (radius < 0)."""
    m = (labels != background).float()[None, None]
    if radius > 0:
        m = _max_filter(m, radius)
    elif radius < 0:
        m = 1 - _max_filter(1 - m, -radius)
    return m[0, 0] > 0.5


def _max_filter(m: torch.Tensor, r: int) -> torch.Tensor:
    """Cubic max filter as three 1D max-pools (same result as one cube, ~2x faster)."""
    for ax in range(3):
        k, pad = [1, 1, 1], [0, 0, 0]
        k[ax], pad[ax] = 2 * r + 1, r
        m = F.max_pool3d(m, k, stride=1, padding=pad)
    return m


def apply(p: SkullStripParams, s: Sample) -> Sample:
    """Set the image to its minimum outside the brain mask: the sample's ``mask`` if it carries one (made
    by :func:`brain_mask` before the deformation), else the labels' non-background voxels, morphed."""
    if not p.applied:
        return s
    if s.labels is None and s.mask is None:
        raise ValueError("skullstrip.apply: the sample has neither labels nor a brain mask")
    mask = s.mask if s.mask is not None else brain_mask(s.labels, s.background, p.radius)  # type: ignore[arg-type]
    return s.with_image(torch.where(mask, s.image, s.image.min()))


TRANSFORM = Transform("skullstrip", SkullStripConfig, SkullStripParams, sample, apply)
