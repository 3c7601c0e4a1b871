"""Networks of the GAN family, built from MONAI blocks and nets.

- :class:`MaskGenerator`: latent vector -> linear -> a small feature volume -> (MONAI transposed
  ``Convolution`` x2 [+ ``ResidualUnit`` except on the finest level]) per level -> lesion logits.
- :class:`MaskCritic`: strided MONAI ``Convolution`` stack without batch statistics (group norm with
  one group = layer norm, as WGAN-GP requires per-sample normalisation) -> global linear score.
- :func:`build_translator`: label map -> image generators (pix2pix: MONAI ``UNet`` + tanh; SPADE:
  MONAI ``SPADENet`` without the VAE encoder + a convolution head + tanh) and their conditional
  discriminators (MONAI ``PatchDiscriminator`` / ``MultiScalePatchDiscriminator``) that see the
  one-hot label map concatenated with the image.

Everything supports ``spatial_dims`` 2 and 3 and trains from scratch (no downloaded weights).
Weights are initialised under a forked, seeded global RNG so that building is reproducible without
touching the caller's random state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
from monai.networks.blocks import Convolution, ResidualUnit
from monai.networks.nets import MultiScalePatchDiscriminator, PatchDiscriminator, SPADENet, UNet

LEAKY = ("LEAKYRELU", {"negative_slope": 0.2})


def _group_norm(channels: int, groups: int = 8) -> tuple:
    return ("GROUP", {"num_groups": math.gcd(channels, groups)})


class MaskGenerator(nn.Module):
    """Latent vector -> lesion logits on the coarse grid.

    Args:
        shape: output spatial shape; every size divisible by 2**(len(channels) - 1).
        latent_dim: size of the latent vector.
        channels: feature channels per level, from the coarsest (the linear layer's output) to the
            finest.
        spatial_dims: 2 or 3.
    """

    def __init__(self, shape: Sequence[int], latent_dim: int = 64,
                 channels: Sequence[int] = (128, 64, 32, 16), spatial_dims: int = 3):
        super().__init__()
        n_up = len(channels) - 1
        if len(shape) != spatial_dims:
            raise ValueError(f"shape {tuple(shape)} does not have {spatial_dims} dimensions")
        if any(s % (2 ** n_up) for s in shape):
            raise ValueError(f"every size of {tuple(shape)} must be divisible by {2 ** n_up}")
        self.shape = tuple(int(s) for s in shape)
        self.latent_dim = int(latent_dim)
        self.base = tuple(s // 2 ** n_up for s in self.shape)
        self.c0 = int(channels[0])
        self.fc = nn.Linear(latent_dim, self.c0 * math.prod(self.base))
        layers: list[nn.Module] = [
            Convolution(spatial_dims, self.c0, self.c0, norm=_group_norm(self.c0), act=LEAKY),
        ]
        for level, (cin, cout) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            # transposed convolution, kernel 4, stride 2: doubles the size at ~1/3 of the cost of
            # up-sampling followed by a 3x3x3 convolution on the fine grid
            layers.append(Convolution(spatial_dims, cin, cout, strides=2, kernel_size=4, padding=1,
                                      output_padding=0, is_transposed=True, norm=_group_norm(cout), act=LEAKY))
            if level < n_up - 1:  # a residual unit on every level but the (costly) finest
                layers.append(ResidualUnit(spatial_dims, cout, cout, subunits=2, norm=_group_norm(cout),
                                           act=LEAKY))
        layers.append(Convolution(spatial_dims, channels[-1], 1, conv_only=True))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, 1, *shape) from latent vectors (B, latent_dim)."""
        return self.body(self.fc(z).view(z.shape[0], self.c0, *self.base))


class MaskCritic(nn.Module):
    """Image -> one unbounded score per sample (the WGAN critic).

    Args:
        shape: input spatial shape.
        channels: feature channels of the strided convolutions (each halves the size).
        spatial_dims: 2 or 3.
        in_channels: input channels (1 for a mask).
    """

    def __init__(self, shape: Sequence[int], channels: Sequence[int] = (16, 32, 64, 128),
                 spatial_dims: int = 3, in_channels: int = 1):
        super().__init__()
        layers: list[nn.Module] = []
        cin = in_channels
        size = [int(s) for s in shape]
        for i, c in enumerate(channels):
            norm = None if i == 0 else ("GROUP", {"num_groups": 1})
            layers.append(Convolution(spatial_dims, cin, c, strides=2, kernel_size=4, padding=1,
                                      norm=norm, act=LEAKY))
            cin = c
            size = [max(1, s // 2) for s in size]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin * math.prod(size), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))[:, 0]


# ----------------------------------------------------------------------------------------------------
# label map -> image translators
# ----------------------------------------------------------------------------------------------------


class Pix2PixGenerator(nn.Module):
    """MONAI ``UNet`` from the one-hot label map to an image in [-1, 1] (tanh)."""

    def __init__(self, spatial_dims: int, num_classes: int, channels: Sequence[int], num_res_units: int = 0,
                 dropout: float = 0.0):
        super().__init__()
        self.unet = UNet(spatial_dims=spatial_dims, in_channels=num_classes, out_channels=1,
                         channels=tuple(channels), strides=(2,) * (len(channels) - 1),
                         num_res_units=num_res_units, norm="INSTANCE", act=LEAKY, dropout=dropout)

    def forward(self, labels_onehot: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.unet(labels_onehot))


class SpadeGenerator(nn.Module):
    """MONAI ``SPADENet`` (decoder only, ``is_vae=False``) + a convolution head + tanh.

    ``SPADENet``'s last residual block outputs ``out_channels`` features; it is given
    ``head_channels`` of them and a final convolution maps those to one image channel.
    """

    def __init__(self, spatial_dims: int, num_classes: int, shape: Sequence[int], channels: Sequence[int],
                 head_channels: int = 16, spade_hidden: int = 32):
        super().__init__()
        self.net = SPADENet(spatial_dims=spatial_dims, in_channels=1, out_channels=head_channels,
                            label_nc=num_classes, input_shape=list(shape), channels=list(channels),
                            is_vae=False, spade_intermediate_channels=spade_hidden, norm="INSTANCE",
                            act=LEAKY, last_act=LEAKY)
        self.head = Convolution(spatial_dims, head_channels, 1, conv_only=True)

    def forward(self, labels_onehot: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.net(labels_onehot)[0]))


class ConditionalDiscriminator(nn.Module):
    """(One-hot labels, image) -> list of patch-score maps and list of intermediate feature lists.

    Wraps MONAI's ``PatchDiscriminator`` (``num_d == 1``) or ``MultiScalePatchDiscriminator`` so both
    return ``(outputs, features)`` like the multi-scale one. Instance norm, no batch statistics.
    """

    def __init__(self, spatial_dims: int, num_classes: int, channels: int = 32, num_layers: int = 3,
                 num_d: int = 1, min_size: int = 32):
        super().__init__()
        self.multi = num_d > 1
        if self.multi:
            self.net: nn.Module = MultiScalePatchDiscriminator(
                num_d=num_d, num_layers_d=num_layers, spatial_dims=spatial_dims, channels=channels,
                in_channels=num_classes + 1, norm="INSTANCE", minimum_size_im=min_size)
        else:
            self.net = PatchDiscriminator(spatial_dims=spatial_dims, channels=channels,
                                          in_channels=num_classes + 1, num_layers_d=num_layers,
                                          norm="INSTANCE")

    def forward(self, labels_onehot: torch.Tensor, image: torch.Tensor
                ) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        x = torch.cat([labels_onehot, image], dim=1)
        if self.multi:
            out, feats = self.net(x)
            return list(out), [list(f) for f in feats]
        res = self.net(x)
        return [res[-1]], [list(res[:-1])]
