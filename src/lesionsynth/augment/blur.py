"""Gaussian blur with a random (anisotropic) width."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.ops import bernoulli, gaussian_blur, uniform


@dataclass
class BlurConfig:
    """Attributes: p: probability. max_sigma_vox: max sigma per axis, voxels."""

    p: float = 0.3
    max_sigma_vox: float = 1.0

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("max_sigma_vox", self.max_sigma_vox, 0.0)


@dataclass
class BlurParams:
    sigma_vox: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


def sample(gen: torch.Generator, cfg: BlurConfig, affine: object = None) -> BlurParams:
    if not bernoulli(gen, cfg.p):
        return BlurParams()
    return BlurParams(sigma_vox=[uniform(gen, 0.0, cfg.max_sigma_vox) for _ in range(3)])


def apply(p: BlurParams, s: Sample) -> Sample:
    return s.with_image(gaussian_blur(s.image, p.sigma_vox))


TRANSFORM = Transform("blur", BlurConfig, BlurParams, sample, apply)
