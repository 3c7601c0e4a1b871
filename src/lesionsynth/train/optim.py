"""Optimiser, poly learning-rate schedule (with an optional linear warm-up) and fp16 gradient scaling."""

from __future__ import annotations

import torch
from torch.optim.lr_scheduler import LambdaLR

from lesionsynth.train.config import OptimConfig


class PolyLambda:
    """``(1 - n / N) ** power``, the poly factor at step ``n``, times ``min(1, (n + 1) / W)`` during a linear
    warm-up of ``W`` steps (a picklable callable).
    """

    def __init__(self, total: int, power: float, warmup: int = 0):
        self.total = max(int(total), 1)
        self.power = float(power)
        self.warmup = max(int(warmup), 0)

    def __call__(self, n: int) -> float:
        poly = max(0.0, 1.0 - n / self.total) ** self.power
        return poly * min(1.0, (n + 1) / self.warmup) if self.warmup else poly


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig, total_iterations: int
                    ) -> tuple[torch.optim.Optimizer, LambdaLR]:
    """AdamW and its per-iteration poly schedule ``lr = lr0 * (1 - n / N) ** power``, scaled by
    ``(n + 1) / W`` over the first ``W = cfg.warmup_iterations`` steps."""
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    return opt, LambdaLR(opt, PolyLambda(total_iterations, cfg.poly_power, cfg.warmup_iterations))


def set_schedule_length(optimizer: torch.optim.Optimizer, scheduler: LambdaLR, total_iterations: int) -> None:
    """Re-fit a (resumed) poly schedule to end at ``total_iterations``: the learning rate from the
    current step on follows ``lr0 * (1 - n / N_new) ** power`` (a run extended or shortened on resume)."""
    for fn in scheduler.lr_lambdas:
        if isinstance(fn, PolyLambda):
            fn.total = max(int(total_iterations), 1)
    n = scheduler.last_epoch
    for group, base, fn in zip(optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas, strict=True):
        group["lr"] = base * fn(n)
    scheduler._last_lr = [g["lr"] for g in optimizer.param_groups]  # what get_last_lr() reports


def build_scaler(dtype: torch.dtype | None, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled only for fp16."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
