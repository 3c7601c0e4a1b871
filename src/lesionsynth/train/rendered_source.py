"""Generator-rendered cases as a training source, sampled on the fly: the ``sample(k, seed)`` interface of
:class:`lesionsynth.synth.SynthGenerator`, on the training grid.

Case ``k`` is what the generator's ``build-dataset`` would write as case ``k`` with the same models, settings
and seed (a GAN translator: :class:`lesionsynth.generative.gan.database.CaseRenderer`; a mask LDM + image
LDM: :class:`lesionsynth.generative.ldm.build.CaseRenderer`), brought onto a crop of the training size and
spacing centred on the head and normalised as ``predict`` prepares a scan (as the physics source does).
Its targets are in the generator's schema.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Protocol

import numpy as np

from lesionsynth.labels import LabelSchema
from lesionsynth.synth.generator import SynthSample


class CaseRenderer(Protocol):
    """What a generator offers: its schema and case ``i`` as ``(image, labels, affine, params)``."""

    schema: LabelSchema | str  # or a built-in schema's name

    def render(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]: ...


class RenderedTrainingSource:
    """Adapter from a generator's case renderer to training crops.

    Args:
        renderer: the generator (its ``build-dataset`` case renderer).
        crop_size: output size in voxels.
        spacing: output voxel size in mm.
    """

    def __init__(self, renderer: CaseRenderer, crop_size: tuple[int, int, int], spacing: float):
        self.renderer = renderer
        self.crop_size = tuple(int(c) for c in crop_size)
        self.spacing = float(spacing)
        self.cfg = SimpleNamespace(schema=renderer.schema)  # the schema of its targets

    def sample(self, index: int, seed: int = 0) -> SynthSample:
        from lesionsynth.train.data import training_crop

        image, labels, affine, params = self.renderer.render(index, seed)
        img, lab = training_crop(image, labels, affine, self.crop_size, self.spacing)
        return SynthSample(image=img, target=lab, affine=np.diag([self.spacing] * 3 + [1.0]), params=params)
