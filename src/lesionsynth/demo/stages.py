"""The pipeline stages as the demo and the experiment runner call them: Python functions, not argv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lesionsynth.errors import LesionsynthError


def train_or_resume(config: str | Path, run_dir: Path, overrides: dict[str, Any] | None = None):
    """Train ``config`` (a path or shipped name, with ``overrides``) into ``run_dir``, resuming from its
    ``last.pt`` when there is one (finished runs return at once); returns the
    :class:`lesionsynth.train.loop.TrainResult`."""
    from lesionsynth.train.config import load_train_config
    from lesionsynth.train.loop import train

    cfg = load_train_config(config, overrides or {})
    return train(cfg, run_dir, resume=(run_dir / "checkpoints" / "last.pt").is_file())


def predict(inputs: list[str | Path], out: Path, model: str | Path | None = None, *, device: str = "cpu",
            ensemble: bool = False, tta: bool = True, fast: bool = False) -> Path:
    """Segment ``inputs`` into ``out`` with ``model`` (default: the bundled model), as ``lesionsynth
    predict`` does; finished outputs are kept.

    Raises:
        LesionsynthError: the first input that failed.
    """
    from lesionsynth.infer.config import PredictConfig
    from lesionsynth.infer.files import predict_files
    from lesionsynth.pretrained import DEFAULT_MODEL

    _, failures = predict_files([str(i) for i in inputs], out, model or DEFAULT_MODEL,
                                config=PredictConfig(tta=tta, fast=fast), ensemble=ensemble,
                                device=None if device == "auto" else device)
    if failures:
        raise LesionsynthError(f"predict: {failures[0]}")
    return out
