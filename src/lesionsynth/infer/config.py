"""Settings of the ``predict`` stage: how windows are run (:class:`PredictConfig`). How images are prepared
for the network is :class:`lesionsynth.preprocess.Preprocessing` (stored in the checkpoint by training)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from lesionsynth.config import from_dict
from lesionsynth.devices import PRECISIONS
from lesionsynth.errors import ConfigError
from lesionsynth.infer.decide import FUSIONS


@dataclass
class PredictConfig:
    """How ``predict`` runs the network.

    Attributes:
        window: largest sliding-window size in voxels (one number or three); None: the checkpoint's
            training patch size, else 192 (the paper's). Shrunk per axis to the (rounded-up) size of
            what has to be covered, always a multiple of the network's divisor.
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
        fusion: how an ensemble's modalities are combined (``probs``, ``logits`` or ``union``; see
            :data:`lesionsynth.infer.decide.FUSIONS`); no effect on one scan. ``probs`` (nnU-Net's
            ensembling) is the default: on the OOD benchmark it never collapsed where ``logits`` did
            (``benchmarks/results/ensemble-fusion.md``).
        progress: a progress bar over the windows of each scan (``predict`` turns it on on a terminal).
    """

    window: int | tuple[int, int, int] | None = None
    overlap: float = 0.5
    sigma_scale: float = 0.125
    tta: bool = True
    fast: bool = False
    crop_foreground: bool = True
    margin: int = 4
    batch_size: int | None = None
    precision: str = "auto"
    save_probabilities: bool = False
    fusion: str = "probs"
    progress: bool = False

    def __post_init__(self) -> None:
        if self.window is not None and min(np.atleast_1d(self.window)) < 1:
            raise ConfigError(f"predict.window: must be positive, got {self.window}")
        if not 0.0 <= self.overlap < 1.0:
            raise ConfigError(f"predict.overlap: must be in [0, 1), got {self.overlap}")
        if self.sigma_scale <= 0:
            raise ConfigError(f"predict.sigma_scale: must be positive, got {self.sigma_scale}")
        if self.margin < 0:
            raise ConfigError(f"predict.margin: must be >= 0, got {self.margin}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"predict.batch_size: must be >= 1, got {self.batch_size}")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"predict.fusion: {self.fusion!r} is not one of {list(FUSIONS)}")
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
