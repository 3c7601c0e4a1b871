"""Trained LDMs: loading checkpoints and generating with them.

Checkpoint format (the run engine's, :mod:`lesionsynth.runs.checkpoint`, kind ``ldm-autoencoder`` or
``ldm-diffusion``, in ``RUN/checkpoints/last.pt``):

- ``stage``: ``autoencoder`` or ``diffusion``; ``kind``: ``mask`` or ``image``;
- ``model``: the stage's network ``state_dict`` (autoencoder, or denoiser incl. the condition MLP and
  null token);
- ``config``: the :class:`~lesionsynth.generative.ldm.config.LDMConfig` as a dict;
- ``schema``: the label schema (``LabelSchema.to_dict``); ``grid_affine``: 4x4 affine of the grid;
- ``condition``: :class:`~lesionsynth.generative.ldm.data.Condition` as a dict (mask LDM);
- diffusion only: ``autoencoder`` (the first stage's ``state_dict``, so a diffusion run is
  self-contained), ``autoencoder_path``, ``scale_factor`` (1 / std of the training latents);
- training state: ``optimizer``, ``iteration``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lesionsynth.config import from_dict
from lesionsynth.errors import InputError
from lesionsynth.generative.ldm.config import LDMConfig
from lesionsynth.generative.ldm.data import Condition, one_hot
from lesionsynth.generative.ldm.nets import build_autoencoder, build_denoiser, ddim_scheduler
from lesionsynth.generative.ldm.sampling import ddim_sample, initial_noise
from lesionsynth.labels import LabelSchema


def read_ldm_checkpoint(path: str | Path, stage: str) -> dict[str, Any]:
    """The checkpoint of an LDM ``stage`` (``autoencoder`` or ``diffusion``) from a run folder or file;
    one-line errors for the wrong kind of file (:func:`lesionsynth.runs.checkpoint.read_run_checkpoint`)."""
    from lesionsynth.runs.checkpoint import read_run_checkpoint

    return read_run_checkpoint(path, f"ldm-{stage}")


def checkpoint_config(ckpt: dict[str, Any], path: str | Path) -> LDMConfig:
    return from_dict(LDMConfig, ckpt["config"], where=f"{path}: config")


def with_weights(module: nn.Module, state: dict[str, Any], device: torch.device | str) -> nn.Module:
    """``module`` with the weights ``state``, moved to ``device``, in eval mode."""
    module.load_state_dict(state)
    return module.to(device).eval()


def load_autoencoder(path: str | Path, device: torch.device | str = "cpu"
                     ) -> tuple[nn.Module, LDMConfig, dict[str, Any]]:
    """The autoencoder of a ``train-autoencoder`` run (eval mode), its config and checkpoint dict."""
    ckpt = read_ldm_checkpoint(path, "autoencoder")
    cfg = checkpoint_config(ckpt, path)
    K = LabelSchema.from_dict(ckpt["schema"]).num_classes
    return with_weights(build_autoencoder(cfg.autoencoder, K, cfg.kind), ckpt["model"], device), cfg, ckpt


@dataclass
class _LDM:
    cfg: LDMConfig
    autoencoder: nn.Module
    denoiser: nn.Module
    schema: LabelSchema
    scale_factor: float
    affine: np.ndarray
    device: torch.device

    @property
    def latent_shape(self) -> tuple[int, ...]:
        return (self.cfg.autoencoder.latent_channels, *self.cfg.latent_shape)

    def _latents(self, seeds: Sequence[int], cond_of: Callable[[slice], torch.Tensor], guidance: float | None,
                 steps: int | None, batch_size: int | None, progress: bool, desc: str
                 ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """``(latents, condition)`` of each batch of ``seeds``; ``cond_of`` gives a batch's condition."""
        from tqdm import tqdm

        s = self.cfg.sampling
        g = s.guidance if guidance is None else float(guidance)
        bs = batch_size or s.batch_size
        for i in tqdm(range(0, len(seeds), bs), desc=desc, leave=False, disable=not progress):
            cond = cond_of(slice(i, i + bs))
            sched = ddim_scheduler(self.cfg.diffusion, steps or s.steps, self.device)
            noise = initial_noise(seeds[i:i + bs], self.latent_shape, self.device)
            yield ddim_sample(self.denoiser, sched, noise, cond, g) / self.scale_factor, cond


@dataclass
class MaskLDM(_LDM):
    """A trained mask LDM: label maps whose condition-class volume ratio follows c."""

    condition: Condition | None = None

    @torch.no_grad()
    def sample(self, conditions: Sequence[float], seeds: Sequence[int], guidance: float | None = None,
               steps: int | None = None, batch_size: int | None = None, progress: bool = False
               ) -> torch.Tensor:
        """One label map per (condition, seed): (N, X, Y, Z) int64 on the CPU.

        Args:
            conditions: normalised conditions c (0 and 1 = smallest and largest training ratio).
            seeds: one seed per map (its initial noise).
            guidance: classifier-free guidance scale (default: the config's).
            steps: DDIM steps (default: the config's).
            batch_size: maps denoised together (default: the config's).
            progress: tqdm bar over the batches.
        """
        if len(conditions) != len(seeds):
            raise ValueError("one seed per condition")

        def cond_of(sl: slice) -> torch.Tensor:
            return torch.as_tensor(list(conditions[sl]), dtype=torch.float32, device=self.device)

        out = [self.autoencoder.decode(z).argmax(1).cpu()
               for z, _ in self._latents(seeds, cond_of, guidance, steps, batch_size, progress, "sample")]
        return torch.cat(out) if out else torch.zeros((0, *self.cfg.grid.shape), dtype=torch.long)


@dataclass
class ImageLDM(_LDM):
    """A trained SPADE image LDM: an image for each label map."""

    @torch.no_grad()
    def render(self, labels: torch.Tensor, seeds: Sequence[int], guidance: float | None = None,
               steps: int | None = None, batch_size: int | None = None, progress: bool = False
               ) -> torch.Tensor:
        """Images (N, X, Y, Z) float32 (about [0, 1]) for label maps (N, X, Y, Z) of this model's schema."""
        if labels.shape[1:] != tuple(self.cfg.grid.shape):
            raise InputError(f"label maps of shape {tuple(labels.shape[1:])} given to an image LDM trained "
                             f"on {tuple(self.cfg.grid.shape)}")
        if len(labels) != len(seeds):
            raise ValueError("one seed per label map")

        def cond_of(sl: slice) -> torch.Tensor:
            return one_hot(labels[sl].to(self.device), self.schema.num_classes)

        out = [self.autoencoder.decode(z, seg)[:, 0].float().cpu()
               for z, seg in self._latents(seeds, cond_of, guidance, steps, batch_size, progress, "render")]
        return torch.cat(out) if out else torch.zeros((0, *self.cfg.grid.shape))


def load_ldm(path: str | Path, device: torch.device | str = "cpu") -> MaskLDM | ImageLDM:
    """A trained LDM from a ``train-diffusion`` run folder or checkpoint."""
    ckpt = read_ldm_checkpoint(path, "diffusion")
    cfg = checkpoint_config(ckpt, path)
    schema = LabelSchema.from_dict(ckpt["schema"])
    dev = torch.device(device)
    K = schema.num_classes
    ae = with_weights(build_autoencoder(cfg.autoencoder, K, cfg.kind), ckpt["autoencoder"], dev)
    den = with_weights(build_denoiser(cfg.diffusion, cfg.autoencoder.latent_channels, K, cfg.kind), ckpt["model"], dev)
    common = dict(cfg=cfg, autoencoder=ae, denoiser=den, schema=schema,
                  scale_factor=float(ckpt["scale_factor"]), affine=np.asarray(ckpt["grid_affine"]),
                  device=dev)
    if cfg.kind == "mask":
        return MaskLDM(**common, condition=Condition(**ckpt["condition"]))
    return ImageLDM(**common)


def _load_kind(path: str | Path, device: str | torch.device, kind: type, wanted: str, other: str):
    from lesionsynth.devices import resolve_device

    m = load_ldm(path, resolve_device(device))
    if not isinstance(m, kind):
        raise InputError(f"{path}: is {other} LDM; give {wanted} LDM run")
    return m


def load_mask_ldm(path: str | Path, device: str | torch.device = "cpu") -> MaskLDM:
    """A trained mask LDM (``device``: any ``--device`` spelling).

    Raises:
        InputError: the run is an image LDM, or is not an LDM run.
    """
    return _load_kind(path, device, MaskLDM, "a mask", "an image")


def load_image_ldm(path: str | Path, device: str | torch.device = "cpu") -> ImageLDM:
    """A trained image (SPADE) LDM (``device``: any ``--device`` spelling).

    Raises:
        InputError: the run is a mask LDM, or is not an LDM run.
    """
    return _load_kind(path, device, ImageLDM, "an image", "a mask")


def check_compatible(mask: MaskLDM, image: ImageLDM, mask_path: str | Path, image_path: str | Path) -> None:
    """The image LDM must know the mask LDM's classes and grid."""
    if mask.schema.classes != image.schema.classes:
        raise InputError(f"{image_path}: image LDM classes {list(image.schema.classes)} differ from the mask "
                         f"LDM's {list(mask.schema.classes)} ({mask_path})")
    mg, ig = mask.cfg.grid, image.cfg.grid
    if tuple(mg.shape) != tuple(ig.shape) or mg.spacing != ig.spacing:
        raise InputError(f"{image_path}: image LDM grid {list(ig.shape)} at {ig.spacing} mm differs from the "
                         f"mask LDM's {list(mg.shape)} at {mg.spacing} mm")
