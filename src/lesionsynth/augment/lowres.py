"""Anisotropic low resolution: thick slices on one axis, then back to the original grid.

A slice thickness ``t`` mm is drawn on a random axis; the image is averaged over slices of thickness
``t`` along that axis (a box slice profile: area down-sampling) and up-sampled back (linear).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_interval, check_probability
from lesionsynth.io.nifti import voxel_sizes
from lesionsynth.ops import bernoulli, uniform


@dataclass
class LowResConfig:
    """Attributes: p: probability. max_thickness_mm: thickest slices. min_thickness_mm: thinnest."""

    p: float = 0.5
    min_thickness_mm: float = 1.5
    max_thickness_mm: float = 8.0

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("min_thickness_mm", self.min_thickness_mm, 0.0, strict=True)
        check_interval("(min_thickness_mm, max_thickness_mm)", (self.min_thickness_mm, self.max_thickness_mm))


@dataclass
class LowResParams:
    axis: int = 0
    thickness_mm: float = 0.0


def sample(gen: torch.Generator, cfg: LowResConfig, affine: object = None) -> LowResParams:
    if not bernoulli(gen, cfg.p):
        return LowResParams()
    return LowResParams(axis=int(torch.randint(0, 3, (), generator=gen)),
                        thickness_mm=uniform(gen, cfg.min_thickness_mm, cfg.max_thickness_mm))


def apply(p: LowResParams, s: Sample) -> Sample:
    """Thick slices of ``p.thickness_mm`` along ``p.axis`` of the sample's grid (its spacing from the affine)."""
    sp = float(voxel_sizes(s.affine)[p.axis])
    if p.thickness_mm <= sp * 1.01:
        return s
    image = s.image
    shape = tuple(image.shape[-3:])
    low = list(shape)
    low[p.axis] = max(2, int(round(shape[p.axis] * sp / p.thickness_mm)))
    x = image[None, None] if image.ndim == 3 else image[None]
    x = F.interpolate(x, size=tuple(low), mode="area")
    x = F.interpolate(x, size=shape, mode="trilinear", align_corners=False)
    return s.with_image(x[0, 0] if image.ndim == 3 else x[0])


TRANSFORM = Transform("lowres", LowResConfig, LowResParams, sample, apply)
