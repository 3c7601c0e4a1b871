"""Python API of ``predict``: tissue and lesion maps for arrays with an affine.

>>> seg = load_segmenter("runs/my_run", device="cpu")
>>> pred = predict_volume(seg, image, affine)            # image (X, Y, Z), affine 4x4
>>> pred.labels.shape == image.shape                     # on the input's own grid
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lesionsynth.devices import resolve_device  # noqa: F401  (re-exported: infer.resolve_device)
from lesionsynth.errors import InputError
from lesionsynth.infer.config import PredictConfig
from lesionsynth.infer.decide import LogitField, decide, translation
from lesionsynth.infer.sliding import model_device, windowed_logits
from lesionsynth.labels.schema import TISSUE, LabelSchema
from lesionsynth.preprocess import Preprocessing, network_input, plan_windows, prepare

DEFAULT_WINDOW = 192  # the paper's sliding-window size, when the checkpoint records no patch size
STITCH_FRACTION = 0.25  # stitch on the GPU when the stitched box needs < 25% of its free memory


@dataclass
class Segmenter:
    """A network with what is needed to use it.

    Attributes:
        model: the network (eval mode); inference runs on its device.
        schema: label schema of its output channels.
        preprocessing: how inputs are prepared.
        divisor: input sizes must be multiples of this.
    """

    model: torch.nn.Module
    schema: LabelSchema = TISSUE
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    divisor: int = 1

    @property
    def device(self) -> torch.device:
        return model_device(self.model)


@dataclass
class Prediction:
    """Outputs for one subject, all on the (first) input's grid.

    Attributes:
        labels: (X, Y, Z) uint8 schema labels (argmax).
        lesion: (X, Y, Z) uint8 binary lesion mask (zeros if the schema has no lesion class).
        probs: (C, X, Y, Z) float32 class probabilities, or None unless asked for.
        uncertainty: (X, Y, Z) float32 fraction of the 8 flips whose label disagrees with the
            consensus, or None without TTA.
        logits: (C, X, Y, Z) float32 fused logits (log of the fused probabilities with ``probs``/``union``
            fusion), or None unless asked for.
        affine: the output grid's voxel-to-world matrix.
        schema: label schema of ``labels``.
    """

    labels: np.ndarray
    lesion: np.ndarray
    probs: np.ndarray | None
    uncertainty: np.ndarray | None
    logits: np.ndarray | None
    affine: np.ndarray
    schema: LabelSchema


def load_segmenter(path: str | Path, device: str | torch.device | None = None) -> Segmenter:
    """Load a run folder or checkpoint file (see :mod:`lesionsynth.models.checkpoint`)."""
    from lesionsynth.models import load_model

    model, cfg, schema, pre = load_model(path, resolve_device(device))
    if cfg.out_channels != schema.num_classes:
        raise InputError(f"{path}: model has {cfg.out_channels} outputs but its schema "
                         f"'{schema.name}' has {schema.num_classes} classes")
    return Segmenter(model=model, schema=schema, preprocessing=Preprocessing.from_checkpoint(pre),
                     divisor=cfg.divisor)


def as_segmenter(model: Segmenter | torch.nn.Module, schema: LabelSchema | None = None,
                 preprocessing: Preprocessing | dict[str, Any] | None = None,
                 divisor: int | None = None) -> Segmenter:
    """Wrap a bare network (a MONAI UNet's divisor is read from its strides)."""
    if isinstance(model, Segmenter):
        return model
    if divisor is None:
        strides = getattr(model, "strides", None)
        divisor = int(np.prod(strides)) if strides else 1
    if isinstance(preprocessing, dict):
        preprocessing = Preprocessing.from_checkpoint(preprocessing, where="preprocessing")
    model.eval()
    return Segmenter(model=model, schema=schema or TISSUE, preprocessing=preprocessing or Preprocessing(),
                     divisor=divisor)


def _stitch_device(seg_device: torch.device, channels: int, box: tuple[slice, ...]) -> torch.device:
    if seg_device.type != "cuda":
        return torch.device("cpu")
    voxels = int(np.prod([s.stop - s.start for s in box]))
    need = 4 * voxels * (channels + 3) * 2  # outputs + weights, twice for temporaries
    free, _ = torch.cuda.mem_get_info(seg_device)
    return seg_device if need < STITCH_FRACTION * free else torch.device("cpu")


def modality_logits(seg: Segmenter, image: np.ndarray, affine: np.ndarray,
                    config: PredictConfig | None = None) -> LogitField:
    """Network logits for one scan on (the foreground box of) its working grid."""
    cfg = (config or PredictConfig()).effective()
    data = np.asarray(image)
    if data.ndim != 3 or min(data.shape) < 2:
        raise InputError(f"expected a 3D image, got shape {tuple(data.shape)}")
    if not np.isfinite(data).all():
        raise InputError("image contains NaN/inf values")
    prep = prepare(data, affine, seg.preprocessing)
    fg = prep.foreground if cfg.crop_foreground else None
    window = cfg.window or seg.preprocessing.patch_size or DEFAULT_WINDOW
    box, roi = plan_windows(fg, prep.image.shape, window, seg.divisor, cfg.margin)
    crop, cval = network_input(prep, box, seg.preprocessing.normalisation)
    logits, disagreement = windowed_logits(
        seg.model, torch.from_numpy(crop), roi, overlap=cfg.overlap, sigma_scale=cfg.sigma_scale, tta=cfg.tta,
        batch_size=cfg.batch_size, precision=cfg.precision, cval=cval, progress=cfg.progress,
        stitch_device=_stitch_device(seg.device, seg.schema.num_classes, box))
    return LogitField(logits=logits, affine=prep.affine @ translation(*(s.start for s in box)),
                      disagreement=disagreement)


def modality_fields(seg: Segmenter, images: list[np.ndarray], affines: list[np.ndarray],
                    config: PredictConfig | None = None) -> list[LogitField]:
    """Check a subject's scan(s) and run the network on each (the first half of :func:`predict_volume`).

    Args:
        seg: the segmenter.
        images: (X, Y, Z) arrays, one per modality.
        affines: one voxel-to-world matrix per image.
        config: :class:`PredictConfig`.

    Returns:
        One :class:`LogitField` per image, to be fused by :func:`fuse_fields`.
    """
    if not images:
        raise InputError("no image given")
    if len(affines) != len(images):
        raise InputError(f"{len(images)} images but {len(affines)} affines")
    affines = [np.asarray(a, dtype=np.float64) for a in affines]
    for a in affines:
        if a.shape != (4, 4) or not np.isfinite(a).all() or abs(np.linalg.det(a[:3, :3])) < 1e-8:
            raise InputError("invalid affine (expected a finite, non-singular 4x4 matrix)")
    return [modality_logits(seg, im, a, config) for im, a in zip(images, affines, strict=True)]


def fuse_fields(seg: Segmenter, fields: list[LogitField], affine: np.ndarray, shape: tuple[int, ...],
                config: PredictConfig | None = None, return_logits: bool = False) -> Prediction:
    """Fuse modality logits (``config.fusion``) onto the grid ``(affine, shape)`` and decide the labels
    (the second half of :func:`predict_volume`)."""
    cfg = config or PredictConfig()
    li = seg.schema.lesion_index
    if cfg.fusion == "union" and li is None and len(fields) > 1:
        raise InputError(f"fusion 'union' needs a lesion class; schema '{seg.schema.name}' has none")
    out_shape = tuple(int(s) for s in shape)
    affine = np.asarray(affine, dtype=np.float64)
    dec = decide(fields, affine, out_shape, background_index=seg.schema.background_index,
                 want_probs=cfg.save_probabilities, want_logits=return_logits,
                 fusion=cfg.fusion, lesion_index=li)
    lesion = (dec.labels == li).astype(np.uint8) if li is not None else np.zeros(out_shape, dtype=np.uint8)
    return Prediction(labels=dec.labels, lesion=lesion, probs=dec.probs, uncertainty=dec.disagreement,
                      logits=dec.logits, affine=affine, schema=seg.schema)


def predict_volume(
    model: Segmenter | torch.nn.Module,
    image: np.ndarray | list[np.ndarray],
    affine: np.ndarray | list[np.ndarray],
    schema: LabelSchema | None = None,
    *,
    config: PredictConfig | None = None,
    preprocessing: Preprocessing | dict[str, Any] | None = None,
    divisor: int | None = None,
    return_logits: bool = False,
) -> Prediction:
    """Segment one subject given as array(s) with affine(s).

    Args:
        model: a :class:`Segmenter` (from :func:`load_segmenter`) or a bare network.
        image: (X, Y, Z) array, or a list of co-registered modalities of one subject (ensembling:
            their logits are fused on the first image's grid, see ``PredictConfig.fusion``).
        affine: voxel-to-world matrix, or one per image.
        schema: label schema (bare networks only; default ``tissue``).
        config: :class:`PredictConfig` (windows, TTA, fast mode, probabilities, fusion).
        preprocessing: bare networks only (default: 1 mm, ``zscore``).
        divisor: bare networks only (default: from a MONAI UNet's strides, else 1).
        return_logits: also return the fused logits on the output grid.

    Returns:
        A :class:`Prediction` on the (first) image's grid.
    """
    seg = as_segmenter(model, schema, preprocessing, divisor)
    cfg = config or PredictConfig()
    images = list(image) if isinstance(image, (list, tuple)) else [image]
    affines = list(affine) if isinstance(affine, (list, tuple)) else [affine] * len(images)
    fields = modality_fields(seg, images, affines, cfg)
    return fuse_fields(seg, fields, affines[0], np.asarray(images[0]).shape, cfg, return_logits)
