"""Networks of the two LDMs (MONAI generative nets) and their noise schedulers.

- Mask LDM: :class:`~monai.networks.nets.AutoencoderKL` (one-hot label maps in, label logits out) and a
  :class:`MaskDenoiser`: :class:`~monai.networks.nets.DiffusionModelUNet` with cross-attention on one
  context token, an MLP embedding of the scalar condition c, or a learned null token.
- Image LDM: :class:`~monai.networks.nets.SPADEAutoencoderKL` and an :class:`ImageDenoiser`:
  :class:`~monai.networks.nets.SPADEDiffusionModelUNet` whose SPADE normalisation sees the one-hot label
  map; the null condition is the all-zero label map.

Both denoisers take ``(x, t, cond, null)`` where ``null`` (B,) bool marks the rows that get the null
condition, so one sampling loop (:mod:`~lesionsynth.generative.ldm.sampling`) serves both.
"""

from __future__ import annotations

import importlib.util

import torch
from torch import nn

from lesionsynth.errors import LesionsynthError
from lesionsynth.generative.ldm.config import AutoencoderConfig, DiffusionConfig


def require_einops() -> None:
    """MONAI's attention blocks (in every diffusion UNet) need ``einops``: a one-line error if missing."""
    if importlib.util.find_spec("einops") is None:
        raise LesionsynthError("the LDM needs the 'einops' package (used by MONAI's diffusion UNet attention "
                               "blocks): pip install einops")


def build_autoencoder(cfg: AutoencoderConfig, num_classes: int, kind: str) -> nn.Module:
    """``AutoencoderKL`` over one-hot maps (``kind='mask'``) or ``SPADEAutoencoderKL`` (``'image'``).

    No attention blocks: the non-local attention of MONAI's autoencoders costs much and helps little on
    the small grids this package trains on.
    """
    from monai.networks.nets import AutoencoderKL, SPADEAutoencoderKL

    common = dict(spatial_dims=3, channels=tuple(cfg.channels), num_res_blocks=cfg.num_res_blocks,
                  attention_levels=(False,) * len(cfg.channels), latent_channels=cfg.latent_channels,
                  norm_num_groups=cfg.norm_num_groups, with_encoder_nonlocal_attn=False,
                  with_decoder_nonlocal_attn=False)
    if kind == "mask":
        return AutoencoderKL(in_channels=num_classes, out_channels=num_classes, **common)
    return SPADEAutoencoderKL(label_nc=num_classes, in_channels=1, out_channels=1,
                              spade_intermediate_channels=cfg.spade_intermediate_channels, **common)


class MaskDenoiser(nn.Module):
    """Noise predictor of the mask LDM, conditioned on a scalar c by cross-attention.

    The context is one token of size ``context_dim``: ``MLP(c)`` (Linear-SiLU-Linear), or a learned
    null token for rows marked ``null`` (condition dropout in training, the unconditional half of
    classifier-free guidance at sampling).
    """

    def __init__(self, cfg: DiffusionConfig, latent_channels: int):
        super().__init__()
        require_einops()
        from monai.networks.nets import DiffusionModelUNet

        d = cfg.context_dim
        self.unet = DiffusionModelUNet(
            spatial_dims=3, in_channels=latent_channels, out_channels=latent_channels,
            channels=tuple(cfg.channels), num_res_blocks=cfg.num_res_blocks,
            attention_levels=tuple(cfg.attention_levels), num_head_channels=cfg.num_head_channels,
            norm_num_groups=cfg.norm_num_groups, with_conditioning=True, cross_attention_dim=d,
        )
        self.embed = nn.Sequential(nn.Linear(1, d), nn.SiLU(), nn.Linear(d, d))
        self.null_token = nn.Parameter(torch.randn(d) * 0.02)

    def context(self, c: torch.Tensor, null: torch.Tensor) -> torch.Tensor:
        """(B,) conditions and (B,) null flags -> (B, 1, context_dim) context."""
        e = self.embed(c.float().reshape(-1, 1))
        e = torch.where(null.reshape(-1, 1), self.null_token.expand_as(e), e)
        return e[:, None, :]

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor, null: torch.Tensor) -> torch.Tensor:
        return self.unet(x, timesteps=t, context=self.context(c, null))


class ImageDenoiser(nn.Module):
    """Noise predictor of the image LDM, conditioned on a one-hot label map by SPADE.

    Rows marked ``null`` see the all-zero label map (the unconditional model of classifier-free
    guidance). ``seg`` always has the batch size of ``x``, so guided sampling duplicates it.
    """

    def __init__(self, cfg: DiffusionConfig, latent_channels: int, num_classes: int):
        super().__init__()
        require_einops()
        from monai.networks.nets import SPADEDiffusionModelUNet

        self.unet = SPADEDiffusionModelUNet(
            spatial_dims=3, in_channels=latent_channels, out_channels=latent_channels, label_nc=num_classes,
            channels=tuple(cfg.channels), num_res_blocks=cfg.num_res_blocks,
            attention_levels=tuple(cfg.attention_levels), num_head_channels=cfg.num_head_channels,
            norm_num_groups=cfg.norm_num_groups,
            spade_intermediate_channels=cfg.spade_intermediate_channels,
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor, seg: torch.Tensor, null: torch.Tensor
                ) -> torch.Tensor:
        keep = (~null).to(seg.dtype).reshape(-1, *([1] * (seg.ndim - 1)))
        return self.unet(x, timesteps=t, seg=seg * keep)


def build_denoiser(cfg: DiffusionConfig, latent_channels: int, num_classes: int, kind: str) -> nn.Module:
    return MaskDenoiser(cfg, latent_channels) if kind == "mask" else ImageDenoiser(cfg, latent_channels,
                                                                                   num_classes)


def ddpm_scheduler(cfg: DiffusionConfig):
    """Training noise schedule."""
    from monai.networks.schedulers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.num_train_timesteps, schedule=cfg.schedule,
                         beta_start=cfg.beta_start, beta_end=cfg.beta_end, clip_sample=False)


def ddim_scheduler(cfg: DiffusionConfig, steps: int, device: torch.device | str = "cpu"):
    """Deterministic (eta = 0) DDIM sampler with ``steps`` steps on the training schedule."""
    from monai.networks.schedulers import DDIMScheduler

    s = DDIMScheduler(num_train_timesteps=cfg.num_train_timesteps, schedule=cfg.schedule,
                      beta_start=cfg.beta_start, beta_end=cfg.beta_end, clip_sample=False)
    s.set_timesteps(steps, device=device)
    return s
