"""Procedural lesions: smooth random fields thresholded inside the brain.

No real masks needed. Each lesion has one or several components; the total volume is drawn
log-uniformly between ``volume_ml`` bounds (a few ml to > 200 ml); each component is an irregular
blob: a randomly oriented ellipsoid whose boundary is perturbed by smooth noise, grown to its volume
by taking the top-N voxels of the field inside the allowed region.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from lesionsynth.config import check_interval
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io.nifti import voxel_sizes
from lesionsynth.ops import rotation_matrix, sample_seed, smooth_noise, uniform


@dataclass
class ProceduralLesionConfig:
    """Parameters of the procedural lesion generator.

    Attributes:
        volume_ml: (min, max) total lesion volume in ml, sampled log-uniformly.
        components: (min, max) number of connected blobs.
        roughness: (min, max) amplitude of the boundary noise relative to the blob radius.
        noise_scale_mm: (min, max) spatial scale of the boundary noise in mm.
        elongation: (min, max) ratio between ellipsoid axes.
    """

    volume_ml: tuple[float, float] = (3.0, 250.0)
    components: tuple[int, int] = (1, 3)
    roughness: tuple[float, float] = (0.3, 1.2)
    noise_scale_mm: tuple[float, float] = (8.0, 24.0)
    elongation: tuple[float, float] = (1.0, 2.5)
    hemisphere: str = "any"   # any | left | right (world x < 0 is left)

    def __post_init__(self) -> None:
        check_interval("volume_ml", self.volume_ml, 0.0)
        if self.volume_ml[0] <= 0:
            raise ConfigError(f"volume_ml = {tuple(self.volume_ml)}: volumes must be > 0 (sampled log-uniformly)")
        check_interval("components", self.components, 1)
        check_interval("roughness", self.roughness, 0.0)
        check_interval("noise_scale_mm", self.noise_scale_mm, 0.0)
        check_interval("elongation", self.elongation, 1.0)
        if self.hemisphere not in ("any", "left", "right"):
            raise ConfigError(f"hemisphere = {self.hemisphere!r} is not one of any, left, right")


@dataclass
class ProceduralLesionParams:
    """One draw of :class:`ProceduralLesionConfig` (replayable)."""

    volumes_ml: list[float] = field(default_factory=list)
    centres_vox: list[list[float]] = field(default_factory=list)
    axes: list[list[float]] = field(default_factory=list)
    rotations: list[list[float]] = field(default_factory=list)
    roughness: list[float] = field(default_factory=list)
    noise_scale_mm: list[float] = field(default_factory=list)
    noise_seed: int = 0


def sample_procedural(gen: torch.Generator, cfg: ProceduralLesionConfig, region: torch.Tensor,
                      affine) -> ProceduralLesionParams:
    """Draw the parameters of one procedural lesion inside ``region`` (bool (X, Y, Z))."""
    coords = region.nonzero()
    if cfg.hemisphere != "any":
        world_x = (torch.as_tensor(np.asarray(affine)[0, :3], dtype=torch.float32)
                   @ coords.T.float().cpu()) + float(np.asarray(affine)[0, 3])
        keep = world_x < 0 if cfg.hemisphere == "left" else world_x > 0
        coords = coords[keep.to(coords.device)]
    if len(coords) == 0:
        raise InputError("procedural lesions: the allowed region (brain) is empty")
    n_comp = int(torch.randint(cfg.components[0], cfg.components[1] + 1, (), generator=gen))
    total = math.exp(uniform(gen, math.log(cfg.volume_ml[0]), math.log(cfg.volume_ml[1])))
    weights = torch.rand(n_comp, generator=gen) + 0.3
    weights = weights / weights.sum()
    p = ProceduralLesionParams(noise_seed=sample_seed(gen))
    for k in range(n_comp):
        idx = int(torch.randint(0, len(coords), (), generator=gen))
        p.volumes_ml.append(total * float(weights[k]))
        p.centres_vox.append([float(c) for c in coords[idx].tolist()])
        el = uniform(gen, *cfg.elongation)
        p.axes.append([1.0, uniform(gen, 1.0, el), el])
        p.rotations.append([uniform(gen, -math.pi, math.pi) for _ in range(3)])
        p.roughness.append(uniform(gen, *cfg.roughness))
        p.noise_scale_mm.append(uniform(gen, *cfg.noise_scale_mm))
    return p


def apply_procedural(p: ProceduralLesionParams, region: torch.Tensor, affine) -> torch.Tensor:
    """Render drawn parameters into a binary mask (float {0, 1}, region's shape and device)."""
    device = region.device
    shape = tuple(region.shape)
    vs = torch.as_tensor(voxel_sizes(np.asarray(affine)), dtype=torch.float32, device=device)
    voxel_ml = float(vs.prod()) / 1000.0
    gen = torch.Generator(device="cpu").manual_seed(p.noise_seed)
    out = torch.zeros(shape, device=device)
    for k in range(len(p.volumes_ml)):
        n_vox = max(1, int(round(p.volumes_ml[k] / voxel_ml)))
        radius_mm = (3 * p.volumes_ml[k] * 1000 / (4 * math.pi)) ** (1 / 3)
        # work in a box around the centre, large enough for the blob and its boundary noise: the
        # longest normalised semi-axis times (1.3 + roughness) radii
        long_axis = max(p.axes[k]) / math.prod(p.axes[k]) ** (1 / 3)
        reach = (1.3 + p.roughness[k]) * radius_mm * long_axis
        half = [int(math.ceil(reach / float(v))) + 2 for v in vs]
        c = [int(round(x)) for x in p.centres_vox[k]]
        lo = [max(0, c[i] - half[i]) for i in range(3)]
        hi = [min(shape[i], c[i] + half[i] + 1) for i in range(3)]
        box = tuple(slice(a, b) for a, b in zip(lo, hi))
        sub = region[box]
        if sub.sum() == 0:
            continue
        grids = torch.meshgrid(*[torch.arange(lo[i], hi[i], device=device, dtype=torch.float32)
                                 for i in range(3)], indexing="ij")
        d = torch.stack([(g - float(x)) * v for g, x, v in zip(grids, p.centres_vox[k], vs)], -1)
        R = torch.from_numpy(rotation_matrix([math.degrees(x) for x in p.rotations[k]])).float().to(device)
        ax = torch.as_tensor(p.axes[k], device=device)
        ax = ax / ax.prod() ** (1 / 3)
        q = (d @ R) / ax
        dist = q.norm(dim=-1) / radius_mm
        noise = smooth_noise(tuple(sub.shape), p.noise_scale_mm[k] / float(vs.mean()), gen, device)
        f = -dist + p.roughness[k] * 0.5 * noise
        f = torch.where(sub, f, torch.full_like(f, -1e9))
        n = min(n_vox, int(sub.sum()))
        thr = torch.topk(f.flatten(), n).values[-1]
        blob = (f >= thr) & sub
        out[box] = torch.maximum(out[box], blob.float())
    return out
