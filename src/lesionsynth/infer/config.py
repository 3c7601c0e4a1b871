"""Settings of the ``predict`` stage: how windows are run (:class:`PredictConfig`) and how images are
prepared for the network (:class:`Preprocessing`, stored in the checkpoint by training)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from typing import Any

from lesionsynth.config import from_dict
from lesionsynth.errors import ConfigError

NORMALISATIONS = ("zscore", "histogram", "none")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class Preprocessing:
    """Image preparation the network was trained with (the checkpoint's ``preprocessing`` dict).

    Attributes:
        spacing: working voxel size in mm (isotropic number or three values).
        normalisation: ``zscore`` (clip to the 0.5/99.5 percentiles, z-score over the foreground),
            ``histogram`` (foreground histogram equalisation, then z-score) or ``none``.
    """

    spacing: float | tuple[float, float, float] = 1.0
    normalisation: str = "zscore"

    def __post_init__(self) -> None:
        if self.normalisation not in NORMALISATIONS:
            raise ConfigError(f"preprocessing.normalisation: {self.normalisation!r} is not one of "
                              f"{list(NORMALISATIONS)}")
        sp = self.spacing if isinstance(self.spacing, tuple) else (self.spacing,)
        if any(s <= 0 for s in sp):
            raise ConfigError(f"preprocessing.spacing: must be positive, got {self.spacing!r}")

    @classmethod
    def from_checkpoint(cls, data: dict[str, Any] | None, where: str = "checkpoint.preprocessing"
                        ) -> Preprocessing:
        """Read the known keys of a checkpoint's ``preprocessing`` dict; other keys are reported once
        on stderr and ignored (they belong to training)."""
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        extra = sorted(k for k in data if k not in known)
        if extra:
            print(f"lesionsynth predict: note: {where}: ignoring key(s) {', '.join(extra)}", file=sys.stderr)
        if isinstance(data.get("spacing"), list):
            data["spacing"] = tuple(data["spacing"])
        return from_dict(cls, {k: v for k, v in data.items() if k in known}, where=where)


@dataclass
class PredictConfig:
    """How ``predict`` runs the network.

    Attributes:
        window: largest sliding-window edge in voxels (paper: 192); shrunk per axis to the (rounded-up)
            size of what has to be covered, always a multiple of the network's divisor.
        overlap: overlap of neighbouring windows (paper: 0.5).
        sigma_scale: Gaussian window weighting, sigma = sigma_scale x window size (paper: 0.125).
        tta: average the logits over all 8 flip combinations (paper: on).
        fast: one pass, no flips, overlap 0.25 (see ``docs/predict.md``); overrides ``tta``/``overlap``.
        crop_foreground: run the windows over the foreground bounding box only (plus ``margin``);
            everything outside it is background.
        margin: voxels added around the foreground bounding box (working grid).
        batch_size: network batch (windows x flips per forward pass); ``None``: 1 on CPU, chosen from
            free memory on CUDA.
        precision: ``auto`` (bf16/fp16 autocast on CUDA, fp32 on CPU), ``fp32``, ``bf16`` or ``fp16``.
        save_probabilities: also return/write class probabilities.
    """

    window: int = 192
    overlap: float = 0.5
    sigma_scale: float = 0.125
    tta: bool = True
    fast: bool = False
    crop_foreground: bool = True
    margin: int = 4
    batch_size: int | None = None
    precision: str = "auto"
    save_probabilities: bool = False

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"predict.window: must be positive, got {self.window}")
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"predict.overlap: must be in [0, 1), got {self.overlap}")
        if self.sigma_scale <= 0:
            raise ConfigError(f"predict.sigma_scale: must be positive, got {self.sigma_scale}")
        if self.margin < 0:
            raise ConfigError(f"predict.margin: must be >= 0, got {self.margin}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"predict.batch_size: must be >= 1, got {self.batch_size}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"predict.precision: {self.precision!r} is not one of {list(PRECISIONS)}")

    def effective(self) -> PredictConfig:
        """The settings actually used: ``fast`` means no flips and overlap 0.25."""
        if self.fast:
            return replace(self, tta=False, overlap=min(self.overlap, 0.25), fast=False)
        return self

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None, where: str = "predict") -> PredictConfig:
        return from_dict(cls, data, where=where)
