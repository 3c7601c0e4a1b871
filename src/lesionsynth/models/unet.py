"""The segmentation network: MONAI's 3D residual UNet (SynthStroke configuration by default)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from monai.networks.nets import UNet


@dataclass
class ModelConfig:
    """MONAI ``UNet`` hyper-parameters.

    Defaults are the SynthStroke paper's: channels (32, 64, 128, 256, 320, 320), strides 2, one
    residual unit per block, instance norm, PReLU, dropout 0.2, transposed-convolution up-sampling.
    ``out_channels`` is normally taken from the label schema.
    """

    in_channels: int = 1
    out_channels: int = 6
    channels: tuple[int, ...] = (32, 64, 128, 256, 320, 320)
    strides: tuple[int, ...] = (2, 2, 2, 2, 2)
    num_res_units: int = 1
    norm: str = "instance"
    act: str = "prelu"
    dropout: float = 0.2

    @property
    def divisor(self) -> int:
        """Input sizes must be multiples of this (product of the strides)."""
        d = 1
        for s in self.strides:
            d *= s
        return d


def build_unet(cfg: ModelConfig) -> torch.nn.Module:
    """Instantiate the MONAI UNet described by ``cfg``."""
    return UNet(
        spatial_dims=3,
        in_channels=cfg.in_channels,
        out_channels=cfg.out_channels,
        channels=tuple(cfg.channels),
        strides=tuple(cfg.strides),
        num_res_units=cfg.num_res_units,
        norm=cfg.norm,
        act=cfg.act,
        dropout=cfg.dropout,
    )
