"""Random flips of image and labels together: every axis by default (the paper's setting), as
``predict``'s test-time augmentation averages all 8 flips; ``axes: lr`` flips left-right only."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_probability
from lesionsynth.ops import bernoulli


@dataclass
class FlipConfig:
    """Attributes: p: probability per flipped axis. axes: 'all' (each array axis) or 'lr' (the world x
    axis only)."""

    p: float = 0.5
    axes: str = "all"

    def __post_init__(self) -> None:
        check_probability("p", self.p)


@dataclass
class FlipParams:
    axes: list[int] = field(default_factory=list)


def lr_axis(affine: np.ndarray) -> int:
    """The array axis closest to the world left-right (x) axis."""
    return int(np.argmax(np.abs(np.asarray(affine)[0, :3])))


def sample(gen: torch.Generator, cfg: FlipConfig, affine: np.ndarray | None = None) -> FlipParams:
    if cfg.axes == "lr" and affine is None:
        raise ValueError("flip.sample: axes 'lr' needs the grid's affine")
    candidates = [lr_axis(affine)] if cfg.axes == "lr" else [0, 1, 2]
    return FlipParams(axes=[a for a in candidates if bernoulli(gen, cfg.p)])


def flip_axes(p: FlipParams, x: torch.Tensor) -> torch.Tensor:
    """Flip spatial axes of (X,Y,Z) or (C,X,Y,Z) data."""
    if not p.axes:
        return x
    off = x.ndim - 3
    return torch.flip(x, dims=[a + off for a in p.axes])


def apply(p: FlipParams, s: Sample) -> Sample:
    """Flip image, labels and mask together (the affine is unchanged: flipped anatomy is new anatomy)."""
    if not p.axes:
        return s
    return replace(s, image=flip_axes(p, s.image),
                   labels=None if s.labels is None else flip_axes(p, s.labels),
                   mask=None if s.mask is None else flip_axes(p, s.mask))


TRANSFORM = Transform("flip", FlipConfig, FlipParams, sample, apply)
