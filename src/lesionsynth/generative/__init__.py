"""The GAN and LDM generator families, and the helpers both use."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch


def seeded_build(seed: int, fn: Callable[[], torch.nn.Module]) -> torch.nn.Module:
    """Call ``fn`` with the global RNG forked and seeded (reproducible weight initialisation)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return fn()


def optimiser_step(opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """One step of ``opt`` down the gradient of ``loss`` (gradients cleared first)."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def centred_affine(spacing: float, shape: Sequence[int], centre: Sequence[float] | np.ndarray) -> np.ndarray:
    """RAS affine of a grid of ``shape`` voxels of ``spacing`` mm (isotropic) centred on the world point ``centre``."""
    a = np.diag([float(spacing)] * 3 + [1.0])
    a[:3, 3] = np.asarray(centre, dtype=np.float64) - float(spacing) * (np.asarray(shape) - 1) / 2.0
    return a


def read_cache(path: Path, key: Any) -> dict | None:
    """The cache file ``path`` if it was written for ``key``; None when it is missing, unreadable or stale."""
    from lesionsynth.models.checkpoint import torch_load

    if not path.is_file():
        return None
    try:
        blob = torch_load(path)
        return blob if blob.get("key") == key else None
    except Exception:  # an unreadable cache is rebuilt
        return None
