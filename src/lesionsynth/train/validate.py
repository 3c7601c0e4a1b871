"""Validation: whole held-out volumes through ``predict``'s own code, lesion Dice.

Cases are a folder (real, or written by ``lesionsynth synth``) resampled to the training spacing, or
held-out synthetic cases generated with a seed the training never uses. Each goes through
:func:`lesionsynth.infer.predict.predict_volume` — the same foreground box, intensity normalisation,
window size (the training patch), overlap and stitching as ``lesionsynth predict`` (no flips, for speed).
With several processes each rank scores every W-th case and the sums are reduced. A case whose ground
truth and prediction both have no lesion scores Dice 1.
"""

from __future__ import annotations

import numpy as np
import torch

from lesionsynth.evaluate.metrics import dice
from lesionsynth.train.data import ValCase
from lesionsynth.train.ddp import DistInfo, all_reduce_sum

VAL_SEED_OFFSET = 0x7A1D  # held-out synthetic cases use seed + this


def synthetic_val_cases(generator, n: int, seed: int) -> list[ValCase]:
    """``n`` held-out synthetic cases (seed ``seed + VAL_SEED_OFFSET``), on the CPU."""
    samples = (generator.sample(j, seed + VAL_SEED_OFFSET) for j in range(n))
    return [ValCase(f"synth_{j:04d}", s.image.float().cpu(), s.target.long().cpu(),
                    np.asarray(s.affine, dtype=np.float64)) for j, s in enumerate(samples)]


@torch.no_grad()
def evaluate(model: torch.nn.Module, cases: list[ValCase], roi_size: tuple[int, int, int], lesion_index: int,
             device: torch.device, info: DistInfo, overlap: float = 0.5, sw_batch_size: int = 1,
             precision: str = "fp32", target_lut: torch.Tensor | None = None,
             preprocessing: dict | None = None, schema=None) -> dict[str, float]:
    """Mean lesion Dice over ``cases`` (sharded over ranks), predicted as ``lesionsynth predict`` does.

    Args:
        model: the network (unwrapped from DDP); put in eval mode here and back to train after.
        cases: validation cases.
        roi_size: sliding-window size (the training patch, as ``predict`` uses by default).
        lesion_index: lesion class of the output.
        device: where to run.
        info: rank and world size.
        overlap: sliding-window overlap (``predict``'s default, 0.5).
        sw_batch_size: windows per forward pass.
        precision: autocast mode (:data:`lesionsynth.devices.PRECISIONS`), the training run's ``amp``.
        target_lut: maps case targets onto the output schema (synthetic cases in another schema).
        preprocessing: the checkpoint's preprocessing record (spacing, normalisation).
        schema: the output label schema.

    Returns:
        ``{"lesion_dice": mean, "cases": n}``.
    """
    from lesionsynth.infer.config import PredictConfig
    from lesionsynth.infer.predict import as_segmenter, predict_volume
    from lesionsynth.preprocess import Preprocessing

    was_training = model.training
    pre = {**(preprocessing or {}), "patch_size": tuple(int(r) for r in roi_size)}
    seg = as_segmenter(model, schema, Preprocessing.from_checkpoint(pre, where="validation"))
    cfg = PredictConfig(overlap=overlap, tta=False, batch_size=sw_batch_size, precision=precision)
    total, count = 0.0, 0
    for case in cases[info.rank::info.world]:
        image = case.image[0].cpu().numpy()
        affine = case.affine if case.affine is not None else np.eye(4)
        pred = predict_volume(seg, image, affine, config=cfg)
        truth = case.target.cpu()
        if target_lut is not None:
            truth = target_lut.cpu()[truth]
        total += dice((truth == lesion_index).numpy(), pred.labels == lesion_index)
        count += 1
    model.train(was_training)
    total, count = all_reduce_sum([total, float(count)], info, device)
    return {"lesion_dice": total / count if count else float("nan"), "cases": int(count)}
