"""Random gamma: rescale to [0, 1], raise to ``exp(log_gamma)``, rescale back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.ops import bernoulli, uniform


@dataclass
class GammaConfig:
    """Attributes: p: probability. log_gamma: max absolute log of the exponent."""

    p: float = 0.8
    log_gamma: float = 0.4

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("log_gamma", self.log_gamma, 0.0)


@dataclass
class GammaParams:
    gamma: float = 1.0


def sample(gen: torch.Generator, cfg: GammaConfig, affine: object = None) -> GammaParams:
    if not bernoulli(gen, cfg.p):
        return GammaParams()
    return GammaParams(gamma=math.exp(uniform(gen, -cfg.log_gamma, cfg.log_gamma)))


def apply(p: GammaParams, s: Sample) -> Sample:
    if p.gamma == 1.0:
        return s
    image = s.image
    lo, hi = image.min(), image.max()
    rng = (hi - lo).clamp_min(1e-6)
    return s.with_image(((image - lo) / rng).clamp_min(0).pow(p.gamma) * rng + lo)


TRANSFORM = Transform("gamma", GammaConfig, GammaParams, sample, apply)
