"""Pasting a binary lesion into healthy anatomy: infarct-grade field and Soft-CP blending.

Given a binary lesion mask M on the label map's grid:

1. **Soft-CP**: the mask is blurred with a Gaussian of sigma ~ U(``softcp_sigma_mm``), giving a soft
   lesion probability alpha in [0, 1] whose 0.5 level set is the original boundary; alpha is zeroed
   outside the brain. The training target is ``alpha > 0.5``.
2. **Infarct grade**: a smooth random field g in [g_min, 1] (g_min ~ U(``grade_min``)) scales how
   strongly the lesion's own intensity replaces the tissue's: the lesion's mixing weight is
   w = alpha * g. Low-grade parts of a lesion look like partially damaged tissue yet stay labelled.
3. The image is ``(1 - w) * tissue_image + w * lesion_image``; tissue targets outside the lesion keep
   their (renormalised) argmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lesionsynth.config import check_interval
from lesionsynth.io.nifti import voxel_sizes
from lesionsynth.ops import gaussian_blur, sample_seed, smooth_noise, uniform


@dataclass
class PasteConfig:
    """Lesion pasting parameters (SynthStroke defaults).

    Attributes:
        grade_min: range of the infarct grade field's minimum (its maximum is 1).
        grade_scale_mm: range of the grade field's spatial scale.
        softcp_sigma_mm: range of the Soft-CP boundary blur.
    """

    grade_min: tuple[float, float] = (0.3, 1.0)
    grade_scale_mm: tuple[float, float] = (8.0, 32.0)
    softcp_sigma_mm: tuple[float, float] = (0.5, 2.0)

    def __post_init__(self) -> None:
        check_interval("grade_min", self.grade_min, 0.0, 1.0)
        check_interval("grade_scale_mm", self.grade_scale_mm, 0.0)
        check_interval("softcp_sigma_mm", self.softcp_sigma_mm, 0.0)


@dataclass
class PasteParams:
    """One draw of :class:`PasteConfig`."""

    grade_min: float = 1.0
    grade_scale_mm: float = 16.0
    softcp_sigma_mm: float = 1.0
    seed: int = 0


def sample_paste(gen: torch.Generator, cfg: PasteConfig) -> PasteParams:
    return PasteParams(grade_min=uniform(gen, *cfg.grade_min), grade_scale_mm=uniform(gen, *cfg.grade_scale_mm),
                       softcp_sigma_mm=uniform(gen, *cfg.softcp_sigma_mm), seed=sample_seed(gen))


def paste_lesion(mask: torch.Tensor, brain: torch.Tensor, affine: np.ndarray,
                 p: PasteParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft lesion probability and intensity-mixing weight.

    Args:
        mask: binary lesion (X, Y, Z), float.
        brain: bool brain mask on the same grid.
        affine: the grid's affine (for mm -> voxel conversions).
        p: drawn parameters.

    Returns:
        ``(alpha, weight)``: soft lesion probability (target = alpha > 0.5) and the mixing weight
        alpha * grade, both (X, Y, Z) float in [0, 1].
    """
    vs = voxel_sizes(affine)
    alpha = gaussian_blur(mask.float(), [p.softcp_sigma_mm / v for v in vs]).clamp(0, 1)
    alpha = alpha * brain.to(alpha.dtype)
    if p.grade_min >= 0.999:
        return alpha, alpha
    gen = torch.Generator(device=mask.device).manual_seed(p.seed)
    field = smooth_noise(mask.shape, [p.grade_scale_mm / v for v in vs], gen, mask.device)
    field = torch.sigmoid(1.5 * field)  # (0, 1), smooth
    fmin, fmax = field.min(), field.max()
    field = (field - fmin) / (fmax - fmin).clamp_min(1e-6)
    return alpha, alpha * (p.grade_min + (1.0 - p.grade_min) * field)
