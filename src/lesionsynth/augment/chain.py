"""The corruption chain: every transform, each with its own probability, in a fixed order.

spatial (affine + elastic + crop, one resampling) -> bias field -> gamma -> motion -> anisotropic low
resolution -> noise -> blur -> random skull-strip -> flips -> percentile clip -> z-score.

:func:`sample_chain` draws every parameter from one ``torch.Generator``; :func:`apply_chain` applies a
draw deterministically, so a recorded draw replays exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from lesionsynth.augment import bias, blur, flip, gamma, lowres, motion, noise, normalize, skullstrip, spatial
from lesionsynth.augment.base import params_dict
from lesionsynth.io.nifti import voxel_sizes


@dataclass
class AugmentConfig:
    """All corruption parameters; each sub-config has its own probability ``p``."""

    spatial: spatial.SpatialConfig = field(default_factory=spatial.SpatialConfig)
    bias: bias.BiasConfig = field(default_factory=bias.BiasConfig)
    gamma: gamma.GammaConfig = field(default_factory=gamma.GammaConfig)
    motion: motion.MotionConfig = field(default_factory=motion.MotionConfig)
    lowres: lowres.LowResConfig = field(default_factory=lowres.LowResConfig)
    noise: noise.NoiseConfig = field(default_factory=noise.NoiseConfig)
    blur: blur.BlurConfig = field(default_factory=blur.BlurConfig)
    skullstrip: skullstrip.SkullStripConfig = field(default_factory=skullstrip.SkullStripConfig)
    flip: flip.FlipConfig = field(default_factory=flip.FlipConfig)
    clip: normalize.ClipConfig = field(default_factory=normalize.ClipConfig)
    zscore: bool = True


@dataclass
class ChainParams:
    """One draw of the whole chain."""

    spatial: spatial.SpatialParams
    bias: bias.BiasParams
    gamma: gamma.GammaParams
    motion: motion.MotionParams
    lowres: lowres.LowResParams
    noise: noise.NoiseParams
    blur: blur.BlurParams
    skullstrip: skullstrip.SkullStripParams
    flip: flip.FlipParams
    clip: normalize.ClipParams

    def to_dict(self) -> dict[str, Any]:
        return {k: params_dict(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ChainParams:
        mods = {"spatial": spatial.SpatialParams, "bias": bias.BiasParams, "gamma": gamma.GammaParams,
                "motion": motion.MotionParams, "lowres": lowres.LowResParams, "noise": noise.NoiseParams,
                "blur": blur.BlurParams, "skullstrip": skullstrip.SkullStripParams, "flip": flip.FlipParams,
                "clip": normalize.ClipParams}
        return cls(**{k: t(**d[k]) for k, t in mods.items()})


def sample_chain(gen: torch.Generator, cfg: AugmentConfig, affine: np.ndarray) -> ChainParams:
    """Draw every transform's parameters, in chain order, from ``gen``."""
    return ChainParams(
        spatial=spatial.sample(gen, cfg.spatial), bias=bias.sample(gen, cfg.bias),
        gamma=gamma.sample(gen, cfg.gamma), motion=motion.sample(gen, cfg.motion),
        lowres=lowres.sample(gen, cfg.lowres), noise=noise.sample(gen, cfg.noise),
        blur=blur.sample(gen, cfg.blur), skullstrip=skullstrip.sample(gen, cfg.skullstrip),
        flip=flip.sample(gen, cfg.flip, affine), clip=normalize.sample(gen, cfg.clip),
    )


def apply_chain(p: ChainParams, cfg: AugmentConfig, image: torch.Tensor, labels: torch.Tensor,
                affine: np.ndarray, centre_vox: np.ndarray | None = None, background: int = 0,
                strip_masks: dict[int, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Apply a drawn chain to an image (X, Y, Z) and its labels (X, Y, Z) on the grid ``affine``.

    ``strip_masks`` (optional) caches skull-strip masks on the input grid by radius
    (:func:`skullstrip.brain_mask` of ``labels``); a cached mask rides along with the labels' resampling
    instead of being eroded/dilated on the output grid (the mask is then morphed before, not after,
    the deformation: a cheaper, equally random model).

    Returns:
        ``(image, labels, out_affine)`` on the output (crop) grid; the image is z-scored when
        ``cfg.zscore``.
    """
    mask = None
    if p.skullstrip.applied and strip_masks is not None:
        r = p.skullstrip.radius
        if r not in strip_masks:
            strip_masks[r] = skullstrip.brain_mask(labels, background, r)
        mask = strip_masks[r]
    if mask is None:
        img, lab, out_affine = spatial.apply(p.spatial, cfg.spatial, image, labels, affine, centre_vox)
    else:
        img, lab, out_affine, mask = spatial.apply(p.spatial, cfg.spatial, image, labels, affine, centre_vox,
                                                   mask=mask)
    assert lab is not None
    img = img.clamp_min(0)
    img = bias.apply(p.bias, img)
    img = gamma.apply(p.gamma, img)
    img = motion.apply(p.motion, img)
    img = lowres.apply(p.lowres, img, voxel_sizes(out_affine))
    img = noise.apply(p.noise, img)
    img = blur.apply(p.blur, img)
    img = skullstrip.apply(p.skullstrip, img, lab, background, mask=mask)
    img = flip.apply(p.flip, img)
    lab = flip.apply(p.flip, lab)
    img = normalize.clip(p.clip, img)
    if cfg.zscore:
        img = normalize.zscore(img)
    return img, lab, out_affine


def augment(gen: torch.Generator, cfg: AugmentConfig, image: torch.Tensor, labels: torch.Tensor,
            affine: np.ndarray, centre_vox: np.ndarray | None = None, background: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, ChainParams]:
    """Sample and apply the chain in one call; also returns the draw."""
    p = sample_chain(gen, cfg, affine)
    img, lab, out_affine = apply_chain(p, cfg, image, labels, affine, centre_vox, background)
    return img, lab, out_affine, p
