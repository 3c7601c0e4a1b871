"""Training checkpoints: what is saved, how it is restored, and the random state of an iteration.

``checkpoints/last.pt`` holds the inference part (:func:`lesionsynth.models.model_state`) plus
``optimizer``, ``scheduler``, ``scaler``, ``progress`` (iteration counter, best validation Dice) and
``rng`` (torch CPU and CUDA, numpy and Python states), and the resolved ``train_config``. It is written
with :func:`lesionsynth.models.save_checkpoint` (temporary file, fsync, rename), so a run killed at any
moment, even while writing, leaves the previous ``last.pt`` intact; stale temporary files are removed
on resume.

Bitwise resume does not rely on restoring stream states, though they are restored: every random draw
of iteration ``i`` is derived from ``(seed, i, rank)`` (data in :mod:`lesionsynth.train.sources`,
dropout via :func:`seed_iteration`).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lesionsynth.errors import InputError
from lesionsynth.io import atomic
from lesionsynth.labels.schema import LabelSchema
from lesionsynth.models import ModelConfig, model_state, save_checkpoint
from lesionsynth.models.checkpoint import torch_load
from lesionsynth.ops import case_seed

DROPOUT_STREAM = 0xD50  # separates the dropout stream from the data streams


@dataclass
class Progress:
    """Counters saved with every checkpoint.

    Attributes:
        iteration: completed optimiser steps.
        best_dice: best validation lesion Dice so far (-1: none yet).
        best_iteration: iteration of the best checkpoint.
    """

    iteration: int = 0
    best_dice: float = -1.0
    best_iteration: int = -1


def seed_iteration(seed: int, iteration: int, rank: int, world: int) -> None:
    """Seed torch's global generators (dropout) from (seed, iteration, rank)."""
    torch.manual_seed(case_seed(case_seed(seed, DROPOUT_STREAM), iteration * world + rank))


def rng_states() -> dict[str, Any]:
    """Every global random state: torch CPU, torch CUDA (all devices), numpy, Python."""
    out: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
                           "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states`."""
    if "torch" in states:
        torch.set_rng_state(states["torch"].cpu())
    if "numpy" in states:
        np.random.set_state(states["numpy"])  # noqa: NPY002
    if "python" in states:
        random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        cuda = states["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def checkpoint_paths(run_dir: Path) -> tuple[Path, Path]:
    """``(last, best)`` checkpoint paths of a run folder."""
    d = Path(run_dir) / "checkpoints"
    return d / "last.pt", d / "best.pt"


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete temporary files left by a write that was killed (``checkpoints/.last.*.tmp.pt``, ...)."""
    return [p for d in (Path(run_dir), Path(run_dir) / "checkpoints")
            for p in atomic.remove_stale_temporaries(d, recursive=False)]


def save_training_checkpoint(path: Path, model: torch.nn.Module, model_cfg: ModelConfig, schema: LabelSchema,
                             preprocessing: dict[str, Any], optimizer: torch.optim.Optimizer,
                             scheduler: Any, scaler: Any, progress: Progress,
                             train_config: dict[str, Any]) -> Path:
    """Write a full (resumable) checkpoint atomically."""
    state = model_state(model, model_cfg, schema, preprocessing)
    state.update({
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(progress),
        "iteration": progress.iteration,
        "rng": rng_states(),
        "train_config": train_config,
    })
    return save_checkpoint(path, state)


def save_best_checkpoint(path: Path, model: torch.nn.Module, model_cfg: ModelConfig, schema: LabelSchema,
                         preprocessing: dict[str, Any], progress: Progress, metrics: dict[str, float],
                         train_config: dict[str, Any]) -> Path:
    """Write the inference checkpoint of the best validation score atomically."""
    state = model_state(model, model_cfg, schema, preprocessing)
    state.update({"iteration": progress.iteration, "metrics": metrics, "train_config": train_config})
    return save_checkpoint(path, state)


def checkpoint_iteration(path: Path) -> int:
    """The number of completed iterations a training checkpoint records (0 when it records none).

    Raises:
        InputError: the file is unreadable.
    """
    ckpt = torch_load(path, "cpu")
    progress = ckpt.get("progress") if isinstance(ckpt, dict) else None
    return int(progress.get("iteration", 0)) if isinstance(progress, dict) else 0


def load_training_checkpoint(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                             scheduler: Any, scaler: Any, device: torch.device) -> Progress:
    """Restore model, optimiser, scheduler, AMP scaler and RNG states; returns the counters.

    Raises:
        InputError: the file is unreadable or not a resumable lesionsynth checkpoint.
    """
    ckpt = torch_load(path, device)
    missing = [k for k in ("model", "optimizer", "scheduler", "progress") if k not in ckpt]
    if missing:
        raise InputError(f"{path}: not a resumable training checkpoint (no '{missing[0]}')")
    net = model.module if hasattr(model, "module") else model
    try:
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError) as e:
        raise InputError(f"{path}: checkpoint does not match this model ({str(e).splitlines()[0]})") from None
    scheduler.load_state_dict(ckpt["scheduler"])
    if scaler is not None and ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])
    if ckpt.get("rng"):
        set_rng_states(ckpt["rng"])
    return Progress(**ckpt["progress"])
