"""Percentile clip."""

import torch

from lesionsynth.augment import normalize
from lesionsynth.augment.base import Sample


def test_percentiles_and_clip():
    x = torch.arange(1000.0).reshape(10, 10, 10)
    out = normalize.apply(normalize.ClipParams(1.0, 99.0), Sample(x)).image
    assert out.min() >= 9 and out.max() <= 990
