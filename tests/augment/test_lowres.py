"""Anisotropic low resolution."""

import torch

from lesionsynth.augment import lowres
from lesionsynth.augment.base import Sample


def test_lowres_blurs_only_its_axis():
    x = torch.zeros(32, 32, 32)
    x[:, :, 16] = 1
    x[16, :, :] += 1
    out = lowres.apply(lowres.LowResParams(axis=2, thickness_mm=6.0), Sample(x)).image
    assert out[5, 5, 16] < 0.6  # the thin slab along z is smeared
    assert torch.allclose(out[16, 5, 5], torch.tensor(1.0), atol=0.1) or out[16, 5, 5] > 0.8
