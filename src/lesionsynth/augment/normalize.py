"""Random percentile clipping, the last transform of the chain (the chain then z-scores; both functions
live in :mod:`lesionsynth.preprocess.intensity`, shared with inference)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_interval
from lesionsynth.errors import ConfigError
from lesionsynth.ops import uniform
from lesionsynth.preprocess.intensity import percentiles


@dataclass
class ClipConfig:
    """Attributes: lower/upper: ranges of the clipping percentiles."""

    lower: tuple[float, float] = (0.0, 1.0)
    upper: tuple[float, float] = (99.0, 100.0)

    def __post_init__(self) -> None:
        check_interval("lower", self.lower, 0.0, 100.0)
        check_interval("upper", self.upper, 0.0, 100.0)
        if self.lower[1] > self.upper[0]:
            raise ConfigError(f"lower = {tuple(self.lower)} overlaps upper = {tuple(self.upper)}")


@dataclass
class ClipParams:
    lower: float = 0.0
    upper: float = 100.0


def sample(gen: torch.Generator, cfg: ClipConfig, affine: object = None) -> ClipParams:
    return ClipParams(lower=uniform(gen, *cfg.lower), upper=uniform(gen, *cfg.upper))


def apply(p: ClipParams, s: Sample) -> Sample:
    """Clip the image to its drawn lower and upper percentiles."""
    if p.lower <= 0.0 and p.upper >= 100.0:
        return s
    lo, hi = percentiles(s.image, [p.lower, p.upper])
    return s.with_image(s.image.clamp(lo, hi))


TRANSFORM = Transform("clip", ClipConfig, ClipParams, sample, apply)
