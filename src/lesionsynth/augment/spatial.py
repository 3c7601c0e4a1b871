"""Random affine + elastic deformation and cropping, applied in ONE resampling of image and labels.

The output grid is the crop (``crop_size`` voxels at ``spacing`` mm, default: the input's spacing),
centred on the brain's centre plus a random shift. A random affine (rotation, scaling, shear,
translation) and a smooth elastic displacement field map output voxels to input voxels; the image is
sampled trilinearly and the labels by nearest neighbour through the same grid. The output affine is
the *undeformed* crop grid: the deformation becomes new anatomy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F

from lesionsynth.augment.base import Sample, Transform
from lesionsynth.config import check_at_least, check_probability
from lesionsynth.errors import ConfigError
from lesionsynth.io.nifti import voxel_sizes
from lesionsynth.io.resample import voxel_map_to_theta
from lesionsynth.ops import bernoulli, rotation_matrix, sample_seed, uniform


@dataclass
class SpatialConfig:
    """Spatial augmentation parameters (SynthStroke defaults).

    Attributes:
        crop_size: output size in voxels; ``None`` keeps the input's size.
        spacing: output voxel size in mm; ``None`` keeps the input's spacing.
        p_affine: probability of a random affine.
        rotation_deg: max absolute rotation per axis.
        scaling: max relative scaling per axis (0.15 = +-15%).
        shear: max shear per axis pair.
        translation_mm: max absolute translation per axis.
        p_elastic: probability of an elastic deformation.
        elastic_max_mm: max standard deviation of the displacement, mm.
        elastic_spacing_mm: distance between the displacement field's control points, mm.
        crop_jitter_mm: max random shift of the crop centre from the brain's centre.
    """

    crop_size: tuple[int, int, int] | None = (192, 192, 192)
    spacing: float | None = None
    p_affine: float = 1.0
    rotation_deg: float = 15.0
    scaling: float = 0.15
    shear: float = 0.012
    translation_mm: float = 10.0
    p_elastic: float = 0.8
    elastic_max_mm: float = 4.0
    elastic_spacing_mm: float = 24.0
    crop_jitter_mm: float = 10.0

    def __post_init__(self) -> None:
        if self.crop_size is not None and min(self.crop_size) < 1:
            raise ConfigError(f"crop_size = {tuple(self.crop_size)}: every size must be >= 1")
        check_at_least("spacing", self.spacing, 0.0, strict=True)
        check_probability("p_affine", self.p_affine)
        check_probability("p_elastic", self.p_elastic)
        for name in ("rotation_deg", "shear", "translation_mm", "elastic_max_mm", "crop_jitter_mm", "scaling"):
            check_at_least(name, getattr(self, name), 0.0)
        if self.scaling >= 1.0:
            raise ConfigError(f"scaling = {self.scaling} must be < 1 (a relative change of the size)")
        check_at_least("elastic_spacing_mm", self.elastic_spacing_mm, 0.0, strict=True)


@dataclass
class SpatialParams:
    """One draw; ``crop_size`` and ``spacing`` are the config's output grid, recorded with the draw."""

    crop_size: tuple[int, int, int] | None = None
    spacing: float | None = None
    rotation_deg: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    scaling: list[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])
    shear: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    translation_mm: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    elastic_std_mm: float = 0.0
    elastic_spacing_mm: float = 24.0
    elastic_seed: int = 0
    crop_shift_mm: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])


def sample(gen: torch.Generator, cfg: SpatialConfig, affine: object = None) -> SpatialParams:
    crop = None if cfg.crop_size is None else tuple(int(c) for c in cfg.crop_size)
    p = SpatialParams(crop_size=crop, spacing=cfg.spacing,  # type: ignore[arg-type]
                      elastic_spacing_mm=cfg.elastic_spacing_mm)
    if bernoulli(gen, cfg.p_affine):
        p.rotation_deg = [uniform(gen, -cfg.rotation_deg, cfg.rotation_deg) for _ in range(3)]
        p.scaling = [1.0 + uniform(gen, -cfg.scaling, cfg.scaling) for _ in range(3)]
        p.shear = [uniform(gen, -cfg.shear, cfg.shear) for _ in range(3)]
        p.translation_mm = [uniform(gen, -cfg.translation_mm, cfg.translation_mm) for _ in range(3)]
    if bernoulli(gen, cfg.p_elastic):
        p.elastic_std_mm = uniform(gen, 0.0, cfg.elastic_max_mm)
        p.elastic_seed = sample_seed(gen)
    p.crop_shift_mm = [uniform(gen, -cfg.crop_jitter_mm, cfg.crop_jitter_mm) for _ in range(3)]
    return p


def _affine_matrix(p: SpatialParams) -> np.ndarray:
    Sh = np.array([[1, p.shear[0], p.shear[1]], [0, 1, p.shear[2]], [0, 0, 1]])
    return rotation_matrix(p.rotation_deg) @ Sh @ np.diag(p.scaling)


def output_grid(in_affine: np.ndarray, in_shape: tuple[int, int, int], p: SpatialParams,
                centre_vox: np.ndarray) -> tuple[np.ndarray, tuple[int, int, int], np.ndarray]:
    """The undeformed crop grid: (voxel map out -> in without deformation, out shape, out affine)."""
    sp_in = voxel_sizes(in_affine)
    sp_out = sp_in if p.spacing is None else np.full(3, float(p.spacing))
    out_shape = tuple(int(s) for s in (p.crop_size or in_shape))
    V = np.eye(4)
    V[:3, :3] = np.diag(sp_out / sp_in)
    V[:3, 3] = centre_vox - V[:3, :3] @ ((np.asarray(out_shape) - 1) / 2.0)
    return V, out_shape, np.asarray(in_affine) @ V  # type: ignore[return-value]


def build_grid(p: SpatialParams, in_affine: np.ndarray, in_shape: tuple[int, int, int], centre_vox: np.ndarray,
               device: torch.device | str) -> tuple[torch.Tensor, tuple[int, int, int], np.ndarray]:
    """Sampling grid (1, X, Y, Z, 3) for ``grid_sample``, the output shape and the output affine."""
    sp_in = voxel_sizes(in_affine)
    centre = np.asarray(centre_vox, dtype=np.float64) + np.asarray(p.crop_shift_mm) / sp_in
    V, out_shape, out_affine = output_grid(in_affine, in_shape, p, centre)
    sp_out = sp_in * np.diag(V[:3, :3])
    # voxel map: i = c + D^-1 (M (sp_out * (j - (S-1)/2)) + t)
    D_inv = np.diag(1.0 / sp_in)
    M = _affine_matrix(p)
    A = np.eye(4)
    A[:3, :3] = D_inv @ M @ np.diag(sp_out)
    half = (np.asarray(out_shape) - 1) / 2.0
    A[:3, 3] = centre + D_inv @ np.asarray(p.translation_mm) - A[:3, :3] @ half
    theta = voxel_map_to_theta(A, in_shape, out_shape).to(device=device, dtype=torch.float32)
    # The affine part is linear, so evaluating it at the elastic field's control points and
    # up-sampling once (trilinear, corners aligned) gives the exact dense grid: one up-sampling
    # instead of a dense affine grid plus an up-sampled displacement (bench_ops.py: ~4x faster).
    n = [2, 2, 2]
    if p.elastic_std_mm > 0:
        n = [max(2, math.ceil(s * so / p.elastic_spacing_mm) + 1) for s, so in zip(out_shape, sp_out)]
    coarse = F.affine_grid(theta[None], [1, 1, *n], align_corners=True)  # (1, n0, n1, n2, 3)
    if p.elastic_std_mm > 0:
        gen = torch.Generator(device=device).manual_seed(p.elastic_seed)
        disp = torch.randn((3, *n), generator=gen, device=device) * p.elastic_std_mm
        # mm -> normalised input coordinates; grid coordinate k indexes array axis 2 - k
        scale = torch.tensor([2.0 / (max(in_shape[k], 2) - 1) / sp_in[k] for k in range(3)],
                             device=device, dtype=torch.float32)
        disp = disp * scale[:, None, None, None]
        coarse = coarse + disp.flip(0).permute(1, 2, 3, 0)[None]
    dense = F.interpolate(coarse.permute(0, 4, 1, 2, 3), size=out_shape, mode="trilinear", align_corners=True)
    return dense.permute(0, 2, 3, 4, 1).contiguous(), out_shape, out_affine


def apply(p: SpatialParams, s: Sample) -> Sample:
    """Deform and crop the sample's image, labels and mask together, in one resampling.

    The image ((X,Y,Z) or (C,X,Y,Z)) is sampled trilinearly, labels and mask by nearest neighbour in one
    pass (the mask packed above the label values). The crop is centred on ``s.centre_vox`` (default: the
    grid's centre) plus the drawn shift; the returned sample lies on the crop grid, with its affine and no
    crop centre.
    """
    image = s.image
    in_shape = tuple(image.shape[-3:])
    centre_vox = s.centre_vox if s.centre_vox is not None else (np.asarray(in_shape) - 1) / 2.0
    grid, _, out_affine = build_grid(p, s.affine, in_shape, centre_vox, image.device)  # type: ignore[arg-type]
    x = image[None, None] if image.ndim == 3 else image[None]
    # outside the field of view: the mean of the input's corners (background), not replicated edges
    # (replicating a textured border makes streaks)
    ends = (slice(0, 4), slice(-4, None))
    corners = torch.stack([x[..., i, j, k].mean((-3, -2, -1)) for i in ends for j in ends for k in ends]).mean(0)
    pad = corners[..., None, None, None].float()
    out = F.grid_sample(x.float() - pad, grid, mode="bilinear", padding_mode="zeros", align_corners=True) + pad
    out_img = out[0, 0] if image.ndim == 3 else out[0]
    labels, mask = s.labels, s.mask
    if labels is not None or mask is not None:
        packed = torch.zeros(in_shape, device=mask.device) if labels is None else labels.float()  # type: ignore[union-attr]
        if mask is not None:
            packed = packed + 1024.0 * mask.float()
        lab = F.grid_sample(packed[None, None], grid, mode="nearest", padding_mode="border",
                            align_corners=True)[0, 0].round()
        if mask is not None:
            mask = lab >= 1024.0
            lab = lab - 1024.0 * mask
        labels = None if labels is None else lab.to(labels.dtype)
    return replace(s, image=out_img, labels=labels, mask=mask, affine=out_affine, centre_vox=None)


TRANSFORM = Transform("spatial", SpatialConfig, SpatialParams, sample, apply)
