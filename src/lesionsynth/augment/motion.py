"""Rigid-motion artefact in k-space.

A subject moving once during the acquisition: phase-encoding lines acquired after a random time point
``t`` come from a translated copy of the object (a linear phase ramp in k-space), which gives ghosting
and blurring along the phase-encoding axis.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_interval, check_probability
from lesionsynth.ops import bernoulli, uniform


@dataclass
class MotionConfig:
    """Attributes: p: probability. max_shift_vox: max translation (voxels) per axis.
    time: (min, max) fraction of k-space acquired before the movement."""

    p: float = 0.2
    max_shift_vox: float = 4.0
    time: tuple[float, float] = (0.15, 0.85)

    def __post_init__(self) -> None:
        check_probability("p", self.p)
        check_at_least("max_shift_vox", self.max_shift_vox, 0.0)
        check_interval("time", self.time, 0.0, 1.0)


@dataclass
class MotionParams:
    applied: bool = False
    axis: int = 0
    time: float = 0.5
    shift_vox: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


def sample(gen: torch.Generator, cfg: MotionConfig, affine: object = None) -> MotionParams:
    if not bernoulli(gen, cfg.p):
        return MotionParams()
    return MotionParams(applied=True, axis=int(torch.randint(0, 3, (), generator=gen)),
                        time=uniform(gen, *cfg.time),
                        shift_vox=[uniform(gen, -cfg.max_shift_vox, cfg.max_shift_vox) for _ in range(3)])


def apply(p: MotionParams, s: Sample) -> Sample:
    if not p.applied:
        return s
    image = s.image
    shape = image.shape[-3:]
    k = torch.fft.fftn(image.float(), dim=(-3, -2, -1))
    # lines (along the phase-encoding axis) acquired after the movement, centre of k-space first
    n = shape[p.axis]
    order = torch.fft.fftshift(torch.arange(n)).tolist()
    moved = sorted(order[int(p.time * n):])
    factors = []
    for ax in range(3):
        f = torch.fft.fftfreq(shape[ax], device=image.device)
        view = [1, 1, 1]
        view[ax] = -1
        factors.append(torch.exp(-2j * torch.pi * f * p.shift_vox[ax]).view(view))
    # the moved lines form at most two contiguous runs: multiply those slabs in place by the (separable)
    # phase ramp of the translation
    dim = k.ndim - 3 + p.axis
    runs: list[list[int]] = []
    for i in moved:
        if runs and i == runs[-1][1]:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    for a, b in runs:
        slab = k.narrow(dim, a, b - a)
        for ax in range(3):
            fac = factors[ax].narrow(ax, a, b - a) if ax == p.axis else factors[ax]
            slab.mul_(fac)
    return s.with_image(torch.fft.ifftn(k, dim=(-3, -2, -1)).abs().to(image.dtype))


TRANSFORM = Transform("motion", MotionConfig, MotionParams, sample, apply)
