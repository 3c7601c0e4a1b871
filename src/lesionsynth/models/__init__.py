"""Segmentation networks and their checkpoints."""

from lesionsynth.models.checkpoint import (
    export_model,
    init_weights,
    load_checkpoint,
    load_model,
    model_state,
    resolve_checkpoint,
    save_checkpoint,
)
from lesionsynth.models.unet import ModelConfig, build_unet

__all__ = ["ModelConfig", "build_unet", "export_model", "init_weights", "load_checkpoint", "load_model", "model_state",
           "resolve_checkpoint", "save_checkpoint"]
