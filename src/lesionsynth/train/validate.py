"""Validation: sliding-window inference on whole held-out volumes, lesion Dice.

Cases are a folder (real, or written by ``lesionsynth synth``) resampled to the training spacing and
z-scored, or held-out synthetic cases generated with a seed the training never uses. With several
processes each rank scores every W-th case and the sums are reduced. A case whose ground truth and
prediction both have no lesion scores Dice 1.
"""

from __future__ import annotations

import contextlib

import torch
from monai.inferers import sliding_window_inference

from lesionsynth.train.data import ValCase
from lesionsynth.train.ddp import DistInfo, all_reduce_sum

VAL_SEED_OFFSET = 0x7A1D  # held-out synthetic cases use seed + this


def dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Dice of two boolean masks (1 when both are empty)."""
    inter = (pred & truth).sum().item()
    total = pred.sum().item() + truth.sum().item()
    return 1.0 if total == 0 else 2.0 * inter / total


def synthetic_val_cases(generator, n: int, seed: int) -> list[ValCase]:
    """``n`` held-out synthetic cases (seed ``seed + VAL_SEED_OFFSET``), on the CPU."""
    cases = []
    for j in range(n):
        s = generator.sample(j, seed + VAL_SEED_OFFSET)
        cases.append(ValCase(f"synth_{j:04d}", s.image.float().cpu(), s.target.long().cpu()))
    return cases


@torch.no_grad()
def evaluate(model: torch.nn.Module, cases: list[ValCase], roi_size: tuple[int, int, int], lesion_index: int,
             device: torch.device, info: DistInfo, overlap: float = 0.25, sw_batch_size: int = 1,
             amp_dtype: torch.dtype | None = None, target_lut: torch.Tensor | None = None
             ) -> dict[str, float]:
    """Mean lesion Dice over ``cases`` (sharded over ranks).

    Args:
        model: the network (unwrapped from DDP); put in eval mode here and back to train after.
        cases: validation cases.
        roi_size: sliding-window size.
        lesion_index: lesion class of the output.
        device: where to run.
        info: rank and world size.
        overlap: sliding-window overlap.
        sw_batch_size: windows per forward pass.
        amp_dtype: autocast dtype on CUDA, or None.
        target_lut: maps case targets onto the output schema (synthetic cases in another schema).

    Returns:
        ``{"lesion_dice": mean, "cases": n}``.
    """
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for case in cases[info.rank::info.world]:
        image = case.image.to(device)[None]
        ctx = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            logits = sliding_window_inference(image, roi_size, sw_batch_size, model, overlap=overlap,
                                              mode="gaussian")
        pred = logits.float().argmax(1)[0]
        truth = case.target.to(device)
        if target_lut is not None:
            truth = target_lut.to(device)[truth]
        total += dice(pred == lesion_index, truth == lesion_index)
        count += 1
    model.train(was_training)
    total, count = all_reduce_sum([total, float(count)], info, device)
    return {"lesion_dice": total / count if count else float("nan"), "cases": int(count)}
