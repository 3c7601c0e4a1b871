"""The transform contract shared by every module of :mod:`lesionsynth.augment`.

Each transform module defines a ``Config`` dataclass (probability and ranges, YAML-loadable, checked in
``__post_init__``), a ``Params`` dataclass (one draw: plain numbers and integer sub-seeds for random
fields, JSON-serialisable), ``sample(gen, cfg, affine=None) -> Params``, which consumes the per-sample
``torch.Generator``, and ``apply(params, sample) -> Sample``, deterministic given the params and acting
on image, labels and mask together. It ends with ``TRANSFORM``, its :class:`Transform` entry; the chain
(:mod:`lesionsynth.augment.chain`) derives its config, params, sampling and application from the ordered
registry of those entries. Recording the params of a draw is enough to replay it exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch


@dataclass
class Sample:
    """What a transform acts on.

    Attributes:
        image: float image, (X, Y, Z) or (C, X, Y, Z).
        labels: integer labels (X, Y, Z) on the same grid, or None.
        affine: voxel-to-world affine of the grid.
        mask: optional boolean mask (X, Y, Z) that moves with the labels (the skull-strip brain mask).
        background: the background label (what the brain mask excludes).
        centre_vox: where the spatial transform centres its crop, in voxels (default: the grid's centre).
    """

    image: torch.Tensor
    labels: torch.Tensor | None = None
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    mask: torch.Tensor | None = None
    background: int = 0
    centre_vox: np.ndarray | None = None

    def with_image(self, image: torch.Tensor) -> Sample:
        return replace(self, image=image)


@dataclass(frozen=True)
class Transform:
    """One entry of the chain's registry: the name of its config key and its four parts."""

    name: str
    config: type
    params: type
    sample: Callable[..., Any]
    apply: Callable[[Any, Sample], Sample]
