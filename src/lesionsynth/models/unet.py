"""The segmentation network: MONAI's 3D residual UNet (SynthStroke configuration by default)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

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
        return math.prod(self.strides)


def build_unet(cfg: ModelConfig) -> torch.nn.Module:
    """Instantiate the MONAI UNet described by ``cfg`` (its fields are the UNet's keyword arguments)."""
    return UNet(spatial_dims=3, **asdict(cfg))
