"""Checkpoints of every trainer: one header, atomic writes, one reader, and the global random states.

Every checkpoint a trainer writes is a dict with ``model`` (the network's ``state_dict``) and
``header = {"format": FORMAT, "kind": KIND, "version": lesionsynth version}``, where ``kind`` is one of
:data:`KINDS`; the rest is the trainer's (optimiser, iteration, config, ...). It is written by
:func:`save_run_checkpoint` (temporary file, fsync, rename: a run killed at any moment, even while
writing, leaves the previous file intact) and read back by :func:`read_run_checkpoint`, which checks the
kind and refuses files of a newer format with one line. Files written before the header existed are
recognised by their keys.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lesionsynth import __version__
from lesionsynth.errors import InputError
from lesionsynth.models.checkpoint import load_checkpoint, resolve_checkpoint, save_checkpoint

FORMAT = 1
KINDS = ("segmenter", "mask-gan", "translator", "ldm-autoencoder", "ldm-diffusion")


def save_run_checkpoint(path: str | Path, kind: str, state: dict[str, Any]) -> Path:
    """Write ``state`` with the header of ``kind`` atomically."""
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}")
    return save_checkpoint(path, {**state, "header": {"format": FORMAT, "kind": kind, "version": __version__}})


def checkpoint_kind(ckpt: dict[str, Any]) -> str | None:
    """The kind of a checkpoint dict (from its header, or from the keys of a file written before it)."""
    header = ckpt.get("header")
    if isinstance(header, dict):
        return header.get("kind")
    if "ldm_format" in ckpt:
        return f"ldm-{ckpt.get('stage')}"
    if ckpt.get("kind") in ("mask-gan", "translator"):
        return ckpt["kind"]
    if "model_config" in ckpt:
        return "segmenter"
    return None


def read_run_checkpoint(path: str | Path, kind: str, map_location: str | torch.device = "cpu",
                        prefer: str = "last") -> dict[str, Any]:
    """A checkpoint of ``kind`` from a file or a run folder (``prefer``: ``last`` or ``best``).

    Raises:
        InputError: one line when the file is unreadable, not a lesionsynth checkpoint, of another kind,
            or of a newer format than this version reads.
    """
    p = resolve_checkpoint(path, prefer=prefer)
    ckpt = load_checkpoint(p, map_location)  # a file: resolves to itself
    found = checkpoint_kind(ckpt)
    if found != kind:
        raise InputError(f"{p}: is a {found or 'unknown'} checkpoint, expected a {kind} checkpoint")
    fmt = ckpt.get("header", {}).get("format", FORMAT)
    if int(fmt) > FORMAT:
        raise InputError(f"{p}: written by a newer lesionsynth (checkpoint format {fmt}); upgrade to read it")
    return ckpt


def checkpoint_iteration(ckpt: dict[str, Any]) -> int:
    """The number of completed iterations a checkpoint records (0 when it records none)."""
    progress = ckpt.get("progress")
    if isinstance(progress, dict):
        return int(progress.get("iteration", 0))
    return int(ckpt.get("iteration", 0) or 0)


def rng_states() -> dict[str, Any]:
    """Every global random state: torch CPU, torch CUDA (all devices), numpy, Python."""
    out: dict[str, Any] = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),  # noqa: NPY002
                           "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["cuda"] = torch.cuda.get_rng_state_all()
    return out


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore :func:`rng_states` (a bare tensor is read as the torch CPU state)."""
    if isinstance(states, torch.Tensor):
        states = {"torch": states}
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
