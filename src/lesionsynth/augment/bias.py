"""Multiplicative smooth bias field: ``image * exp(field)``."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_interval, check_probability
from lesionsynth.ops import bernoulli, sample_seed, smooth_noise, uniform


@dataclass
class BiasConfig:
    """Attributes:
    p: probability. max_std: max standard deviation of the log-field.
    control_points: (min, max) number of control points per axis (smoothness)."""

    p: float = 0.8
    max_std: float = 0.5
    control_points: tuple[int, int] = (3, 6)

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("max_std", self.max_std, 0.0)
        check_interval("control_points", self.control_points, 2)


@dataclass
class BiasParams:
    std: float = 0.0
    control_points: int = 4
    seed: int = 0


def sample(gen: torch.Generator, cfg: BiasConfig, affine: object = None) -> BiasParams:
    if not bernoulli(gen, cfg.p):
        return BiasParams()
    n = int(torch.randint(cfg.control_points[0], cfg.control_points[1] + 1, (), generator=gen))
    return BiasParams(std=uniform(gen, 0.0, cfg.max_std), control_points=n, seed=sample_seed(gen))


def apply(p: BiasParams, s: Sample) -> Sample:
    if p.std <= 0:
        return s
    image = s.image
    shape = tuple(image.shape[-3:])
    gen = torch.Generator(device=image.device).manual_seed(p.seed)
    field = smooth_noise(shape, [s / max(p.control_points - 1, 1) for s in shape], gen, image.device)
    return s.with_image(image * torch.exp(field * p.std))


TRANSFORM = Transform("bias", BiasConfig, BiasParams, sample, apply)
