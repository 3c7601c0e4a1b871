"""Checkpoints: written atomically, loadable from a run folder or a file.

A checkpoint is a dict saved with ``torch.save``:

- ``model``: the network's ``state_dict`` (unwrapped from DDP);
- ``model_config``: :class:`ModelConfig` as a dict;
- ``schema``: the label schema as a dict (``LabelSchema.to_dict``);
- ``preprocessing``: dict, e.g. ``{"spacing": 1.0, "normalisation": "zscore"}``;
- training state (``optimizer``, ``scheduler``, ``scaler``, ``iteration``, ``epoch``, ``rng``, ...),
  optional and ignored by inference.

A run folder holds ``checkpoints/last.pt`` and ``checkpoints/best.pt``; inference prefers ``best``.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lesionsynth.config import from_dict
from lesionsynth.errors import InputError
from lesionsynth.io.atomic import atomic_path
from lesionsynth.labels.schema import LabelSchema
from lesionsynth.models.unet import ModelConfig, build_unet


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file, fsync, then rename: never a half-written checkpoint."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
    return path


def resolve_checkpoint(path: str | Path, prefer: str = "best") -> Path:
    """A checkpoint file from a file path, a run folder (``best`` then ``last``) or the name of a bundled
    model (``lesionsynth models``); a path that exists wins over a bundled name."""
    p = Path(path)
    if p.is_file():
        return p
    if not p.exists():
        from lesionsynth.pretrained import bundled_path

        bundled = bundled_path(str(path))
        if bundled is not None:
            return bundled
    if p.is_dir():
        order = [prefer, "last" if prefer == "best" else "best"]
        for name in order:
            for cand in (p / "checkpoints" / f"{name}.pt", p / f"{name}.pt"):
                if cand.is_file():
                    return cand
        raise InputError(f"{p}: no checkpoint (checkpoints/best.pt or checkpoints/last.pt) in this folder")
    raise InputError(f"{p}: model not found (give a bundled model name, see `lesionsynth models`, a run folder "
                     f"or a .pt checkpoint)")


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict, with a one-line error for unreadable files."""
    p = resolve_checkpoint(path)
    try:
        ckpt = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as e:
        raise InputError(f"{p}: cannot read checkpoint ({type(e).__name__})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{p}: not a lesionsynth checkpoint")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, ModelConfig, LabelSchema, dict[str, Any]]:
    """Network (eval mode, on ``device``), its config, label schema and preprocessing dict."""
    ckpt = load_checkpoint(path)
    cfg = from_dict(ModelConfig, ckpt.get("model_config", {}), where="checkpoint.model_config")
    schema = LabelSchema.from_dict(ckpt["schema"]) if "schema" in ckpt else None
    if schema is None:
        from lesionsynth.labels.schema import TISSUE
        schema = TISSUE
    model = build_unet(cfg)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, cfg, schema, dict(ckpt.get("preprocessing", {}))


def model_state(model: torch.nn.Module, cfg: ModelConfig, schema: LabelSchema,
                preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inference part of a checkpoint."""
    net = model.module if hasattr(model, "module") else model
    return {"model": net.state_dict(), "model_config": asdict(cfg), "schema": schema.to_dict(),
            "preprocessing": preprocessing or {"spacing": 1.0, "normalisation": "zscore"}}
