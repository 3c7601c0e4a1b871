"""The corruption chain: every transform of the registry, each with its own probability, in a fixed order.

spatial (affine + elastic + crop, one resampling) -> bias field -> gamma -> motion -> anisotropic low
resolution -> noise -> blur -> random skull-strip -> flips -> percentile clip, then z-score.

:data:`REGISTRY` lists the transforms once, in order; the chain's config (:class:`AugmentConfig`, one key
per transform plus ``zscore``), its draw (:class:`ChainParams`), :func:`sample_chain` (every parameter
from one ``torch.Generator``) and :func:`apply_chain` (deterministic, so a recorded draw replays exactly)
all derive from it. A new transform is a module following :mod:`lesionsynth.augment.base` and one line
here.
"""

from __future__ import annotations

from dataclasses import asdict, field, make_dataclass
from typing import Any

import numpy as np
import torch

from lesionsynth.augment import bias, blur, flip, gamma, lowres, motion, noise, normalize, skullstrip, spatial
from lesionsynth.augment.base import Sample, Transform
from lesionsynth.preprocess.intensity import zscore

REGISTRY: tuple[Transform, ...] = (
    spatial.TRANSFORM, bias.TRANSFORM, gamma.TRANSFORM, motion.TRANSFORM, lowres.TRANSFORM, noise.TRANSFORM,
    blur.TRANSFORM, skullstrip.TRANSFORM, flip.TRANSFORM, normalize.TRANSFORM,
)


def _to_dict(self: Any) -> dict[str, Any]:
    return {t.name: asdict(getattr(self, t.name)) for t in REGISTRY}


def _from_dict(cls: type, d: dict[str, Any]) -> Any:
    return cls(**{t.name: t.params(**d[t.name]) for t in REGISTRY})


AugmentConfig = make_dataclass(
    "AugmentConfig",
    [(t.name, t.config, field(default_factory=t.config)) for t in REGISTRY] + [("zscore", bool, True)],
)
AugmentConfig.__module__ = __name__
AugmentConfig.__doc__ = ("All corruption parameters: one key per transform of :data:`REGISTRY` (each with its own "
                         "probability ``p``), and ``zscore`` (normalise the output).")

ChainParams = make_dataclass(
    "ChainParams", [(t.name, t.params) for t in REGISTRY],
    namespace={"to_dict": _to_dict, "from_dict": classmethod(_from_dict)},
)
ChainParams.__module__ = __name__
ChainParams.__doc__ = "One draw of the whole chain: one Params per transform of :data:`REGISTRY`."


def sample_chain(gen: torch.Generator, cfg: AugmentConfig, affine: np.ndarray) -> ChainParams:  # type: ignore[valid-type]
    """Draw every transform's parameters, in registry order, from ``gen``."""
    return ChainParams(**{t.name: t.sample(gen, getattr(cfg, t.name), affine) for t in REGISTRY})


def apply_chain(p: ChainParams, cfg: AugmentConfig, image: torch.Tensor, labels: torch.Tensor,  # type: ignore[valid-type]
                affine: np.ndarray, centre_vox: np.ndarray | None = None, background: int = 0,
                strip_masks: dict[int, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Apply a drawn chain to an image (X, Y, Z) and its labels (X, Y, Z) on the grid ``affine``.

    The image is first clipped at 0 (MR magnitudes; bias and gamma assume non-negative values).
    ``strip_masks`` (optional) caches skull-strip masks on the input grid by radius
    (:func:`skullstrip.brain_mask` of ``labels``); a cached mask rides along with the labels' resampling
    instead of being eroded/dilated on the output grid (the mask is then morphed before, not after,
    the deformation: a cheaper, equally random model).

    Returns:
        ``(image, labels, out_affine)`` on the output (crop) grid; the image is z-scored when
        ``cfg.zscore``.
    """
    s = Sample(image=image.clamp_min(0), labels=labels, affine=np.asarray(affine), background=background,
               centre_vox=centre_vox)
    if p.skullstrip.applied and strip_masks is not None:
        r = p.skullstrip.radius
        if r not in strip_masks:
            strip_masks[r] = skullstrip.brain_mask(labels, background, r)
        s.mask = strip_masks[r]
    for t in REGISTRY:
        s = t.apply(getattr(p, t.name), s)
    img = zscore(s.image) if cfg.zscore else s.image
    assert s.labels is not None
    return img, s.labels, s.affine


def augment(gen: torch.Generator, cfg: AugmentConfig, image: torch.Tensor, labels: torch.Tensor,  # type: ignore[valid-type]
            affine: np.ndarray, centre_vox: np.ndarray | None = None, background: int = 0
            ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, ChainParams]:  # type: ignore[valid-type]
    """Sample and apply the chain in one call; also returns the draw."""
    p = sample_chain(gen, cfg, affine)
    img, lab, out_affine = apply_chain(p, cfg, image, labels, affine, centre_vox, background)
    return img, lab, out_affine, p
