"""Physics-rendered scans as a training source: each case a scan drawn by
:class:`~lesionsynth.physics.PhysicsGenerator` (modality and resolution from its config's lists: e.g.
``modalities: [t1w]`` for a T1w-only baseline), brought onto the training grid as every rendered source is
(:mod:`lesionsynth.train.rendered_source`, :func:`lesionsynth.train.data.training_crop`).
"""

from __future__ import annotations

import numpy as np

from lesionsynth.physics.generator import PhysicsConfig, PhysicsGenerator
from lesionsynth.train.rendered_source import RenderedTrainingSource


class PhysicsTrainingSource(RenderedTrainingSource):
    """Adapter from physics scans to training crops (the physics generator is its own case renderer).

    Args:
        cfg: the physics generator's configuration.
        crop_size: output size in voxels.
        spacing: output voxel size in mm.
        label_maps: pre-loaded label maps (default: from ``cfg.labels``).
    """

    schema = "tissue"  # the schema of its targets

    def __init__(self, cfg: PhysicsConfig, crop_size: tuple[int, int, int], spacing: float, label_maps=None):
        self.generator = PhysicsGenerator(cfg, label_maps=label_maps)
        super().__init__(self, crop_size, spacing)

    def render(self, i: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
        """Scan ``i`` of ``seed`` as ``(image, labels, affine, params)``."""
        s = self.generator.sample(i, seed)
        return s.image, s.labels, s.affine, s.params
