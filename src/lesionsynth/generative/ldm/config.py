"""Configuration of a latent diffusion model (one YAML file for both training stages).

A config describes one LDM: either a *mask* LDM (label maps generated under a scalar condition, the
normalised volume ratio of one class) or an *image* LDM (images rendered for a given label map with
SPADE). The same file is given to ``lesionsynth ldm train-autoencoder`` and ``train-diffusion``; both
runs store it, so sampling needs only the run folders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from lesionsynth.errors import ConfigError


@dataclass
class GridConfig:
    """The voxel grid every label map (and image) is resampled onto (RAS, isotropic).

    Attributes:
        spacing: voxel size in mm.
        shape: grid shape; each size must be divisible by the total down-sampling of the autoencoder
            and the diffusion UNet (see :meth:`LDMConfig.check`).
        centre: world coordinates (mm) of the grid centre. ``None`` centres the grid on each input's
            field of view (for maps in native, non-MNI spaces); generated maps are then written with the
            grid centred on the world origin.
    """

    spacing: float = 4.0
    shape: tuple[int, int, int] = (40, 48, 40)
    centre: tuple[float, float, float] | None = (0.0, -17.0, 8.0)


@dataclass
class DataConfig:
    """Where training label maps (and images) come from.

    Mask LDM: exactly one of

    - ``lesions`` alone: binary lesion masks (schema ``background, lesion``); the intracranial volume
      (ICV) is the MNI152 brain-mask volume on the grid, the same for every mask;
    - ``labels`` (``default`` = MNI152, a NIfTI file or a folder; hard maps go through ``mapping``),
      optionally with ``lesions`` pasted in (lesion class inside the brain);
    - ``dataset``: an nnU-Net style folder (``labelsTr``), e.g. the output of ``lesionsynth synth``.

    Image LDM: ``dataset`` with ``imagesTr`` and ``labelsTr`` (one image channel is used).

    Attributes:
        labels: label-map source.
        mapping: mapping table for hard label maps (default ``freesurfer-to-<schema>``).
        schema: label schema of ``labels``/``dataset`` maps.
        lesions: folder of binary lesion masks.
        dataset: dataset folder.
        flip: also use left-right mirrored lesion masks (doubles the lesion set).
        max_items: use at most this many maps (None: all).
        condition_label: class whose volume ratio (class voxels / non-background voxels) is the
            mask LDM's condition.
        image_channel: image channel of ``dataset`` for the image LDM.
    """

    labels: str | None = None
    mapping: str | None = None
    schema: str = "tissue"
    lesions: str | None = None
    dataset: str | None = None
    flip: bool = False
    max_items: int | None = None
    condition_label: str = "lesion"
    image_channel: int = 0


@dataclass
class TrainConfig:
    """Optimisation settings of one training stage.

    Attributes:
        iterations: total optimiser steps.
        batch_size: maps per step.
        lr: Adam learning rate.
        checkpoint_every: write ``checkpoints/last.pt`` every this many steps (and at the end).
        sample_every: write a PNG sample grid every this many steps (0: only at the end).
        log_every: add a row to ``metrics.csv`` every this many steps.
    """

    iterations: int = 1000
    batch_size: int = 4
    lr: float = 1e-3
    checkpoint_every: int = 200
    sample_every: int = 500
    log_every: int = 10


@dataclass
class AutoencoderConfig:
    """KL autoencoder (MONAI ``AutoencoderKL``, or ``SPADEAutoencoderKL`` for the image LDM).

    Attributes:
        channels: channels per level; the latent grid is the input grid / 2^(levels-1).
        num_res_blocks: residual blocks per level.
        latent_channels: channels of the latent.
        norm_num_groups: group-norm groups (must divide every channel count).
        spade_intermediate_channels: SPADE hidden channels (image LDM).
        kl_weight: weight of the KL term (sum over latent voxels, mean over the batch).
        dice_weight: weight of the soft Dice term next to cross-entropy (mask LDM).
        train: optimisation settings.
    """

    channels: tuple[int, ...] = (8, 16, 16)
    num_res_blocks: int = 1
    latent_channels: int = 3
    norm_num_groups: int = 8
    spade_intermediate_channels: int = 16
    kl_weight: float = 1e-6
    dice_weight: float = 1.0
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class DiffusionConfig:
    """Latent diffusion UNet (MONAI ``DiffusionModelUNet`` / ``SPADEDiffusionModelUNet``) and its noise.

    The mask LDM is conditioned by cross-attention on one context token: a small MLP embedding of c, or a
    learned null token (condition dropout). The image LDM is conditioned by SPADE on the label map; its
    null condition is the all-zero label map.

    Attributes:
        channels: channels per level.
        num_res_blocks: residual blocks per level.
        attention_levels: levels with (self + cross) attention; the middle block always has it.
        num_head_channels: channels per attention head.
        norm_num_groups: group-norm groups.
        context_dim: size of the condition embedding (mask LDM).
        spade_intermediate_channels: SPADE hidden channels (image LDM).
        condition_dropout: probability of training on the null condition (classifier-free guidance).
        num_train_timesteps: DDPM steps.
        schedule: MONAI noise schedule name.
        beta_start: first beta.
        beta_end: last beta.
        train: optimisation settings.
    """

    channels: tuple[int, ...] = (32, 64)
    num_res_blocks: int = 1
    attention_levels: tuple[bool, ...] = (False, True)
    num_head_channels: int = 32
    norm_num_groups: int = 8
    context_dim: int = 32
    spade_intermediate_channels: int = 16
    condition_dropout: float = 0.2
    num_train_timesteps: int = 1000
    schedule: Literal["linear_beta", "scaled_linear_beta", "sigmoid_beta"] = "scaled_linear_beta"
    beta_start: float = 0.0015
    beta_end: float = 0.0195
    train: TrainConfig = field(default_factory=lambda: TrainConfig(iterations=3000, batch_size=8, lr=2.5e-4))


@dataclass
class SamplingConfig:
    """Defaults of the sampling commands (each can be overridden on the command line).

    Attributes:
        steps: DDIM steps.
        guidance: classifier-free guidance scale G (1 = conditional model only).
        batch_size: samples denoised together.
    """

    steps: int = 50
    guidance: float = 3.0
    batch_size: int = 8


@dataclass
class LDMConfig:
    """One latent diffusion model.

    Attributes:
        kind: ``mask`` (label maps under a volume condition) or ``image`` (SPADE image for a label map).
        seed: seed of initialisation, batches, noise and dropout.
        grid: the voxel grid.
        data: training data.
        autoencoder: first stage.
        diffusion: second stage.
        sampling: sampling defaults.
    """

    kind: Literal["mask", "image"] = "mask"
    seed: int = 0
    grid: GridConfig = field(default_factory=GridConfig)
    data: DataConfig = field(default_factory=DataConfig)
    autoencoder: AutoencoderConfig = field(default_factory=AutoencoderConfig)
    diffusion: DiffusionConfig = field(default_factory=DiffusionConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)

    def __post_init__(self) -> None:
        self.check()

    @property
    def latent_factor(self) -> int:
        """Down-sampling factor grid -> latent."""
        return 2 ** (len(self.autoencoder.channels) - 1)

    @property
    def latent_shape(self) -> tuple[int, int, int]:
        f = self.latent_factor
        return tuple(s // f for s in self.grid.shape)  # type: ignore[return-value]

    def check(self) -> None:
        """Raise :class:`ConfigError` for settings MONAI would reject later with a traceback."""
        ae, dm = self.autoencoder, self.diffusion
        if self.grid.spacing <= 0:
            raise ConfigError(f"grid.spacing must be > 0, got {self.grid.spacing}")
        total = self.latent_factor * 2 ** (len(dm.channels) - 1)
        bad = [s for s in self.grid.shape if s <= 0 or s % total]
        if bad:
            raise ConfigError(
                f"grid.shape {list(self.grid.shape)}: every size must be a positive multiple of {total} "
                f"(autoencoder down-sampling {self.latent_factor} x diffusion UNet "
                f"{2 ** (len(dm.channels) - 1)})"
            )
        if len(dm.attention_levels) != len(dm.channels):
            raise ConfigError(
                f"diffusion.attention_levels has {len(dm.attention_levels)} entries for "
                f"{len(dm.channels)} levels (diffusion.channels)"
            )
        for name, chans, groups in (("autoencoder", ae.channels, ae.norm_num_groups),
                                    ("diffusion", dm.channels, dm.norm_num_groups)):
            if any(c % groups for c in chans):
                raise ConfigError(f"{name}.norm_num_groups {groups} must divide every channel count "
                                  f"{list(chans)}")
        for c, att in zip(dm.channels, dm.attention_levels, strict=True):
            if att and c % dm.num_head_channels:
                raise ConfigError(f"diffusion.num_head_channels {dm.num_head_channels} must divide {c}")
        if dm.channels[-1] % dm.num_head_channels:
            raise ConfigError(f"diffusion.num_head_channels {dm.num_head_channels} must divide "
                              f"{dm.channels[-1]} (the middle block has attention)")
        if not 0.0 <= dm.condition_dropout < 1.0:
            raise ConfigError(f"diffusion.condition_dropout must be in [0, 1), got {dm.condition_dropout}")
        for name, t in (("autoencoder.train", ae.train), ("diffusion.train", dm.train)):
            if t.iterations < 1 or t.batch_size < 1 or t.lr <= 0:
                raise ConfigError(f"{name}: iterations, batch_size and lr must be positive")
        if self.sampling.steps < 1 or self.sampling.steps > dm.num_train_timesteps:
            raise ConfigError(f"sampling.steps must be in 1..{dm.num_train_timesteps}, "
                              f"got {self.sampling.steps}")


@dataclass
class SourceBuildConfig:
    """An LDM training source sampled on the fly (``{kind: ldm, checkpoint: MASK_RUN, build: {...}}``).

    Attributes:
        image: ``train-diffusion`` run of the image LDM that renders each map (the mask LDM's classes and grid).
        condition_range: case ``i``'s condition is drawn uniformly from [A, B] from ``(seed, i)``, as
            ``ldm build-dataset --condition-range A B`` draws (e.g. ``[0.6, 1.0]`` for large lesions).
        guidance: the mask LDM's guidance scale (default: its config's).
        image_guidance: the image LDM's guidance scale (default: its config's).
        steps: DDIM steps of both (default: the configs').
    """

    image: str
    condition_range: tuple[float, float] = (0.0, 1.0)
    guidance: float | None = None
    image_guidance: float | None = None
    steps: int | None = None

    def __post_init__(self) -> None:
        lo, hi = self.condition_range
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
            raise ValueError(f"condition_range [{lo}, {hi}]: need finite A <= B")
        for name in ("guidance", "image_guidance"):
            v = getattr(self, name)
            if v is not None and not (math.isfinite(v) and v >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {v}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
