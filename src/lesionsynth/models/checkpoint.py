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

import errno
import os
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from lesionsynth.config import from_dict
from lesionsynth.errors import InputError
from lesionsynth.io.atomic import atomic_path
from lesionsynth.labels.schema import TISSUE, LabelSchema
from lesionsynth.models.unet import ModelConfig, build_unet


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """``torch.save`` to a temporary file, fsync, then rename: never a half-written checkpoint."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            try:
                torch.save(state, f)
            except RuntimeError as e:  # torch wraps a failed write (full disk, quota) in RuntimeError
                msg = str(e).strip().splitlines()[-1] if str(e).strip() else "write failed"
                raise OSError(errno.EIO, f"could not write the checkpoint (disk full?): {msg}", str(path)) from None
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
        for name in (prefer, "last" if prefer == "best" else "best"):
            for cand in (p / "checkpoints" / f"{name}.pt", p / f"{name}.pt"):
                if cand.is_file():
                    return cand
        raise InputError(f"{p}: no checkpoint (checkpoints/best.pt or checkpoints/last.pt) in this folder")
    raise InputError(f"{p}: model not found (give a bundled model name, see `lesionsynth models`, a run folder "
                     f"or a .pt checkpoint)")


def export_model(checkpoint: str | Path | list[str | Path], out: str | Path, half: bool = True) -> Path:
    """Write the inference part of a checkpoint (network, config, schema, preprocessing) with fp16
    weights, atomically: what a bundled ``pretrained/NAME.pt`` holds.

    Args:
        checkpoint: one checkpoint (file, run folder or bundled name), or several of the same network and
            schema, whose weights are then averaged uniformly (stochastic weight averaging of, e.g., the
            ends of warm-restart cycles of one training run; Izmailov et al. 2018).
        out: the file to write.
        half: store floating-point weights as fp16.

    Raises:
        InputError: one line when a checkpoint cannot be read or the checkpoints do not fit together.
    """
    sources = list(checkpoint) if isinstance(checkpoint, (list, tuple)) else [checkpoint]
    if not sources:
        raise InputError("export: no checkpoint given")
    cks = [load_checkpoint(c) for c in sources]
    ck = cks[-1]
    for other, src in zip(cks[:-1], sources[:-1]):
        for key in ("model_config", "schema", "preprocessing"):
            if other.get(key) != ck.get(key):
                raise InputError(f"export: {src} differs from {sources[-1]} in its {key}; only checkpoints of "
                                 f"the same network, schema and preprocessing can be averaged")
        if other["model"].keys() != ck["model"].keys():
            raise InputError(f"export: {src} and {sources[-1]} hold different weights")
    state = {}
    for k, v in ck["model"].items():
        if torch.is_floating_point(v):
            mean = torch.stack([c["model"][k].double() for c in cks]).mean(0)
            v = mean.to(torch.float16 if half else v.dtype)
        state[k] = v
    keep = {k: ck[k] for k in ("model_config", "schema", "preprocessing") if k in ck}
    meta: dict[str, Any] = {"iteration": int(ck.get("iteration", -1)), "source": Path(str(sources[-1])).name}
    if len(sources) > 1:
        meta["averaged"] = [str(s) for s in sources]
    return save_checkpoint(out, {"model": state, **keep, "meta": meta})


def _numpy_globals() -> list[Any]:
    """The numpy reconstructors an array inside a checkpoint needs (old RNG states): data, not code."""
    import numpy as np

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    dtypes = [type(np.dtype(t)) for t in ("uint32", "float64", "int64", "float32", "uint8", "bool")]
    return [_reconstruct, np.ndarray, np.dtype, *dtypes]


def torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load`` that cannot run code: ``weights_only=True`` (tensors, containers, numbers,
    strings, numpy arrays); a crafted pickle raises :class:`InputError` instead of executing.

    Every checkpoint, cache and state file of the package is read through this function.
    """
    try:
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        raise InputError(f"{path}: refused to load (it holds Python objects other than weights; "
                         f"lesionsynth only loads weights-only files)") from None
    except Exception as e:
        raise InputError(f"{path}: cannot read checkpoint ({type(e).__name__})") from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint dict, with a one-line error for unreadable files."""
    p = resolve_checkpoint(path)
    ckpt = torch_load(p, map_location)
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise InputError(f"{p}: not a lesionsynth checkpoint")
    return ckpt


def load_model(path: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[torch.nn.Module, ModelConfig, LabelSchema, dict[str, Any]]:
    """Network (eval mode, on ``device``), its config, label schema and preprocessing dict."""
    ckpt = load_checkpoint(path)
    cfg = from_dict(ModelConfig, ckpt.get("model_config", {}), where="checkpoint.model_config")
    schema = LabelSchema.from_dict(ckpt["schema"]) if "schema" in ckpt else TISSUE
    model = build_unet(cfg)
    model.load_state_dict(ckpt["model"])
    model.to(device).eval()
    return model, cfg, schema, dict(ckpt.get("preprocessing", {}))


def init_weights(model: torch.nn.Module, cfg: ModelConfig, schema: LabelSchema, source: str | Path) -> Path:
    """Initialise ``model`` from another model's weights (fine-tuning; nnU-Net's ``-pretrained_weights``).

    Args:
        model: the freshly built network (``build_unet(cfg)``).
        cfg: its config; the source must have the same architecture.
        schema: its output schema; the source must have the same number of classes.
        source: bundled model name, run folder or checkpoint file.

    Returns:
        The checkpoint file the weights came from.

    Raises:
        InputError: one line when the source cannot be read or does not fit.
    """
    path = resolve_checkpoint(source, prefer="last")
    ckpt = load_checkpoint(path)
    src_cfg = from_dict(ModelConfig, ckpt.get("model_config", {}), where=f"{path}: model_config")
    mine, theirs = asdict(cfg), asdict(src_cfg)
    diff = sorted(k for k in mine if mine[k] != theirs.get(k))
    if diff:
        raise InputError(f"init_from {source}: its network differs in {', '.join(diff)} "
                         f"({', '.join(f'{k}={theirs.get(k)}' for k in diff)})")
    src_schema = LabelSchema.from_dict(ckpt["schema"]) if "schema" in ckpt else None
    if src_schema is not None and list(src_schema.classes) != list(schema.classes):
        raise InputError(f"init_from {source}: its classes {list(src_schema.classes)} differ from the schema's "
                         f"{list(schema.classes)}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in ckpt["model"].items()}
    model.load_state_dict(state)
    return path


def model_state(model: torch.nn.Module, cfg: ModelConfig, schema: LabelSchema,
                preprocessing: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inference part of a checkpoint."""
    net = model.module if hasattr(model, "module") else model
    return {"model": net.state_dict(), "model_config": asdict(cfg), "schema": schema.to_dict(),
            "preprocessing": preprocessing or {"spacing": 1.0, "normalisation": "zscore"}}
