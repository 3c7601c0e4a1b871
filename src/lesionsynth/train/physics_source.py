"""Physics-rendered scans as a training source: the same ``sample(k, seed)`` interface as
:class:`lesionsynth.synth.SynthGenerator`, on the training grid.

Each case is a scan drawn by :class:`~lesionsynth.physics.PhysicsGenerator` (modality and resolution from
its config's lists: e.g. ``modalities: [t1w]`` for a T1w-only baseline), resampled in one step onto a
crop of the training size at the training spacing, centred on the head (RAS), then clipped to its 0.5th
and 99.5th percentiles and z-scored, as ``predict`` prepares a scan. Labels follow with nearest
neighbour interpolation.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from lesionsynth.physics.generator import PhysicsConfig, PhysicsGenerator
from lesionsynth.synth.generator import SynthSample


class PhysicsTrainingSource:
    """Adapter from physics scans to training crops.

    Args:
        cfg: the physics generator's configuration.
        crop_size: output size in voxels.
        spacing: output voxel size in mm.
        label_maps: pre-loaded label maps (default: from ``cfg.labels``).
    """

    def __init__(self, cfg: PhysicsConfig, crop_size: tuple[int, int, int], spacing: float, label_maps=None):
        self.generator = PhysicsGenerator(cfg, label_maps=label_maps)
        self.crop_size = tuple(int(c) for c in crop_size)
        self.spacing = float(spacing)
        self.cfg = SimpleNamespace(schema="tissue")  # the schema of its targets, as SynthGenerator.cfg

    def sample(self, index: int, seed: int = 0) -> SynthSample:
        from lesionsynth.train.data import training_crop

        s = self.generator.sample(index, seed)
        img, lab = training_crop(s.image, s.labels, s.affine, self.crop_size, self.spacing)
        affine = np.diag([self.spacing] * 3 + [1.0])
        return SynthSample(image=img, target=lab, affine=affine, params=s.params)
