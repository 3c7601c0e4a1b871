"""GAN-rendered cases as a training source, sampled on the fly: the ``sample(k, seed)`` interface of
:class:`lesionsynth.synth.SynthGenerator`, on the training grid.

Case ``k`` is what ``lesionsynth gan build-dataset`` would write as case ``k`` with the same translator,
settings and seed (:class:`lesionsynth.generative.gan.database.CaseRenderer`), brought onto a crop of the
training size and spacing centred on the head and normalised as ``predict`` prepares a scan (as the physics
source does). Its targets are in the translator's schema.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from lesionsynth.generative.gan.database import BuildConfig, CaseRenderer
from lesionsynth.synth.generator import SynthSample


class GanTrainingSource:
    """Adapter from a trained translator (+ lesion source) to training crops.

    Args:
        translator: translator run folder or checkpoint.
        cfg: the builder settings (label maps, lesions: procedural, a mask folder or a mask GAN run, ...).
        crop_size: output size in voxels.
        spacing: output voxel size in mm.
        device: where the translator runs.
    """

    def __init__(self, translator: str, cfg: BuildConfig, crop_size: tuple[int, int, int], spacing: float,
                 device="cpu"):
        self.renderer = CaseRenderer(translator, cfg, device)
        self.crop_size = tuple(int(c) for c in crop_size)
        self.spacing = float(spacing)
        self.cfg = SimpleNamespace(schema=self.renderer.schema)  # the schema of its targets

    def sample(self, index: int, seed: int = 0) -> SynthSample:
        from lesionsynth.train.data import training_crop

        image, labels, affine, params = self.renderer.render(index, seed)
        img, lab = training_crop(image, labels, affine, self.crop_size, self.spacing)
        return SynthSample(image=img, target=lab, affine=np.diag([self.spacing] * 3 + [1.0]), params=params)
