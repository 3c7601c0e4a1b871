"""Additive Gaussian noise, std relative to the image's robust intensity range."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.ops import bernoulli, sample_seed, uniform


@dataclass
class NoiseConfig:
    """Attributes: p: probability. max_std: max noise std as a fraction of the intensity range."""

    p: float = 0.8
    max_std: float = 0.06

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("max_std", self.max_std, 0.0)


@dataclass
class NoiseParams:
    std: float = 0.0
    seed: int = 0


def sample(gen: torch.Generator, cfg: NoiseConfig, affine: object = None) -> NoiseParams:
    if not bernoulli(gen, cfg.p):
        return NoiseParams()
    return NoiseParams(std=uniform(gen, 0.0, cfg.max_std), seed=sample_seed(gen))


def apply(p: NoiseParams, s: Sample) -> Sample:
    if p.std <= 0:
        return s
    image = s.image
    gen = torch.Generator(device=image.device).manual_seed(p.seed)
    scale = (image.max() - image.min()).clamp_min(1e-6)
    noise = torch.randn(image.shape, generator=gen, device=image.device, dtype=image.dtype)
    return s.with_image(image + noise * (p.std * scale))


TRANSFORM = Transform("noise", NoiseConfig, NoiseParams, sample, apply)
