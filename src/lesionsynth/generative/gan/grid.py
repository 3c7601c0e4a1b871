"""The coarse world-space grid the lesion-mask GAN works on.

A :class:`MaskGrid` is an axis-aligned RAS grid of ``shape`` voxels of ``spacing_mm`` centred on the
world point ``centre_mm``. The default centre lies on the mid-sagittal plane (x = 0), so mirroring the
array along its first axis is exactly the world left-right flip x -> -x.

Real masks reach the coarse grid by *area averaging*: they are read onto a fine grid whose voxels
subdivide each coarse voxel into ``factor``^3 sub-voxels (``factor = round(spacing_mm)``, so about
1 mm), then average-pooled. A coarse voxel therefore holds the lesion's volume fraction, a soft value
in [0, 1] like the generator's sigmoid output.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lesionsynth.generative import centred_affine


@dataclass
class MaskGrid:
    """Coarse grid of the mask GAN.

    Attributes:
        spacing_mm: voxel size (isotropic), mm.
        shape: voxels per axis; each must be divisible by 2**(number of generator up-samplings).
        centre_mm: world coordinates (RAS, mm) of the grid's centre.
    """

    spacing_mm: float = 4.0
    shape: tuple[int, int, int] = (40, 48, 40)
    centre_mm: tuple[float, float, float] = (0.0, -17.0, 5.0)

    def __post_init__(self) -> None:
        if self.spacing_mm <= 0:
            raise ValueError("spacing_mm must be positive")
        if len(self.shape) != 3 or min(self.shape) < 2:
            raise ValueError(f"shape must be three sizes >= 2, got {self.shape}")

    def affine(self) -> np.ndarray:
        """Voxel-to-world matrix of the coarse grid."""
        return centred_affine(self.spacing_mm, self.shape, self.centre_mm)

    @property
    def factor(self) -> int:
        """Sub-voxels per coarse voxel and axis on the fine (about 1 mm) grid."""
        return max(1, int(round(self.spacing_mm)))

    def fine(self) -> tuple[np.ndarray, tuple[int, int, int]]:
        """Affine and shape of the fine grid that average-pools exactly onto the coarse grid."""
        f = self.factor
        shape = tuple(int(s * f) for s in self.shape)
        return centred_affine(self.spacing_mm / f, shape, self.centre_mm), shape  # type: ignore[return-value]

    @property
    def voxel_ml(self) -> float:
        return self.spacing_mm ** 3 / 1000.0
