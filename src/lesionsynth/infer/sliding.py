"""Windowed inference with flip test-time augmentation, on one prepared volume (a tensor).

Windows are cut, weighted (Gaussian) and stitched by MONAI's ``sliding_window_inference``. Flip TTA
happens inside each window: the window and its 7 flipped copies go through the network (in batches of
``batch_size``), the outputs are flipped back and their logits averaged. This costs the same number of
forward passes as flipping the whole volume 8 times, and the flipped copies can share a GPU batch.

Besides the averaged logits, each window also yields the flip *disagreement*: the fraction of the flips
whose own argmax differs from the argmax of the averaged logits. It is stitched like the logits.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from monai.inferers import sliding_window_inference

from lesionsynth.devices import autocast, autocast_dtype
from lesionsynth.infer.decide import channel_argmax

SPATIAL_DIMS = (2, 3, 4)


def flip_combinations(tta: bool = True) -> list[tuple[int, ...]]:
    """All subsets of the three spatial axes of a (B, C, X, Y, Z) tensor: 8 with TTA, else ``[()]``."""
    if not tta:
        return [()]
    return [c for r in range(4) for c in itertools.combinations(SPATIAL_DIMS, r)]


def model_device(model: torch.nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def auto_batch_size(device: torch.device, roi: tuple[int, int, int], n_flips: int) -> int:
    """Network batch size: 1 on CPU (no speed-up from batching, only memory); on CUDA as many flips
    as fit in half the free memory, assuming ~256 bytes of activations per voxel and sample."""
    if device.type != "cuda":
        return 1
    free, _ = torch.cuda.mem_get_info(device)
    per_sample = 256 * roi[0] * roi[1] * roi[2]
    return int(max(1, min(n_flips, (free // 2) // max(per_sample, 1))))


def make_tta_predictor(model: torch.nn.Module, flips: list[tuple[int, ...]], batch_size: int,
                       amp_dtype: torch.dtype | None) -> Callable[[torch.Tensor], tuple[torch.Tensor, ...]]:
    """A window predictor returning (mean logits over flips, flip disagreement) for a window batch."""

    def predict(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        copies = [(f, i) for f in flips for i in range(b)]
        total: torch.Tensor | None = None
        votes: list[torch.Tensor] = []
        for start in range(0, len(copies), batch_size):
            chunk = copies[start:start + batch_size]
            inp = torch.cat([torch.flip(x[i:i + 1], f) if f else x[i:i + 1] for f, i in chunk])
            with autocast(x.device, amp_dtype):
                out = model(inp)
            out = out.float()
            for k, (f, i) in enumerate(chunk):
                o = torch.flip(out[k:k + 1], f) if f else out[k:k + 1]
                if total is None:
                    total = torch.zeros((b, *o.shape[1:]), dtype=torch.float32, device=o.device)
                total[i:i + 1] += o
                if len(flips) > 1:
                    votes.append(channel_argmax(o[0], 0))
        assert total is not None
        mean = total / len(flips)
        if len(flips) == 1:
            return mean, torch.zeros_like(mean[:, :1])
        consensus = [channel_argmax(mean[i], 0) for i in range(b)]
        disagree = torch.zeros_like(mean[:, 0])
        for j, (_, i) in enumerate(copies):
            disagree[i] += votes[j] != consensus[i]
        return mean, (disagree / len(flips))[:, None]

    return predict


@torch.inference_mode()
def windowed_logits(
    model: torch.nn.Module,
    image: torch.Tensor,
    roi: tuple[int, int, int],
    *,
    overlap: float = 0.5,
    sigma_scale: float = 0.125,
    tta: bool = True,
    batch_size: int | None = None,
    precision: str = "auto",
    cval: float = 0.0,
    stitch_device: torch.device | str | None = None,
    progress: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Logits of ``model`` over ``image`` by Gaussian-weighted sliding windows, optionally flip-TTA.

    Args:
        model: network in eval mode; it runs on its own device (windows are moved there).
        image: (X, Y, Z) or (1, 1, X, Y, Z) normalised image (any device; CPU keeps memory low).
        roi: window size, each a multiple of the network's divisor.
        overlap: window overlap.
        sigma_scale: Gaussian weighting sigma relative to the window size.
        tta: average over the 8 flip combinations.
        batch_size: network batch; None chooses (see :func:`auto_batch_size`).
        precision: see :class:`~lesionsynth.infer.config.PredictConfig`.
        cval: padding value where the window extends beyond the image (the normalised background).
        stitch_device: where the stitched volumes live; default: the image's device.
        progress: show a bar over the windows (each window runs all its flips).

    Returns:
        (logits (C, X, Y, Z) float32, flip disagreement (X, Y, Z) in [0, 1] or None without TTA),
        on ``stitch_device``.
    """
    x = (image if image.ndim == 5 else image[None, None]).float()
    dev = model_device(model)
    flips = flip_combinations(tta)
    bs = batch_size or auto_batch_size(dev, roi, len(flips))
    predictor = make_tta_predictor(model, flips, bs, autocast_dtype(precision, dev))
    logits, disagreement = sliding_window_inference(
        x, roi_size=tuple(int(r) for r in roi), sw_batch_size=1, predictor=predictor, overlap=overlap,
        mode="gaussian", sigma_scale=sigma_scale, padding_mode="constant", cval=float(cval),
        sw_device=dev, device=stitch_device or x.device, progress=progress,
    )
    return logits[0], (disagreement[0, 0] if tta else None)
