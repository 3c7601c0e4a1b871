"""The segmenter's checkpoints: what is saved and how it is restored, on the run engine's format.

``checkpoints/last.pt`` (kind ``segmenter``, :mod:`lesionsynth.runs.checkpoint`) holds the inference part
(:func:`lesionsynth.models.model_state`) plus ``optimizer``, ``scheduler``, ``scaler``, ``progress``
(iteration counter, best validation Dice, the length a time budget fitted the run to), ``train_seconds``
(training wall time so far), ``rng`` (torch CPU and CUDA, numpy and Python states) and the
resolved ``train_config``.

Bitwise resume does not rely on restoring stream states, though they are restored: every random draw
of iteration ``i`` is derived from ``(seed, i, rank)`` (data in :mod:`lesionsynth.train.sources`,
dropout via :func:`seed_iteration`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from lesionsynth.errors import InputError
from lesionsynth.labels.schema import LabelSchema
from lesionsynth.models import ModelConfig, model_state
from lesionsynth.ops import case_seed
from lesionsynth.runs.checkpoint import rng_states, save_run_checkpoint, set_rng_states

DROPOUT_STREAM = 0xD50  # separates the dropout stream from the data streams


@dataclass
class Progress:
    """Counters saved with every checkpoint.

    Attributes:
        iteration: completed optimiser steps.
        best_dice: best validation lesion Dice so far (-1: none yet).
        best_iteration: iteration of the best checkpoint.
        planned_iterations: the iteration a time budget has shortened the run to (0: not shortened).
    """

    iteration: int = 0
    best_dice: float = -1.0
    best_iteration: int = -1
    planned_iterations: int = 0


def seed_iteration(seed: int, iteration: int, rank: int, world: int) -> None:
    """Seed torch's global generators (dropout) from (seed, iteration, rank)."""
    torch.manual_seed(case_seed(case_seed(seed, DROPOUT_STREAM), iteration * world + rank))


def save_training_checkpoint(path: Path, model: torch.nn.Module, model_cfg: ModelConfig, schema: LabelSchema,
                             preprocessing: dict[str, Any], optimizer: torch.optim.Optimizer,
                             scheduler: Any, scaler: Any, progress: Progress,
                             train_config: dict[str, Any], seconds: float = 0.0) -> Path:
    """Write a full (resumable) checkpoint atomically; ``seconds``: the run's training wall time so far,
    over all its sessions (the clock of a time budget; kept out of ``progress``, which is the same for an
    interrupted and an uninterrupted run)."""
    return save_run_checkpoint(path, "segmenter", {
        **model_state(model, model_cfg, schema, preprocessing),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "progress": asdict(progress),
        "iteration": progress.iteration,
        "rng": rng_states(),
        "train_config": train_config,
        "train_seconds": float(seconds),
    })


def save_best_checkpoint(path: Path, model: torch.nn.Module, model_cfg: ModelConfig, schema: LabelSchema,
                         preprocessing: dict[str, Any], progress: Progress, metrics: dict[str, float],
                         train_config: dict[str, Any]) -> Path:
    """Write the inference checkpoint of the best validation score atomically."""
    state = model_state(model, model_cfg, schema, preprocessing)
    state.update({"iteration": progress.iteration, "metrics": metrics, "train_config": train_config})
    return save_run_checkpoint(path, "segmenter", state)


def load_training_checkpoint(ckpt: dict[str, Any], path: Path, model: torch.nn.Module,
                             optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any) -> Progress:
    """Restore model, optimiser, scheduler, AMP scaler and RNG states from the checkpoint dict read from
    ``path`` (:func:`lesionsynth.runs.read_run_checkpoint`); returns the counters.

    Raises:
        InputError: not a resumable checkpoint, or one of another network.
    """
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
