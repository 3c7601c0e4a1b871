"""Flips."""

import numpy as np
import torch

from lesionsynth.augment import flip
from lesionsynth.augment.base import Sample


def test_flip_lr_axis_from_affine():
    lia = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    assert flip.lr_axis(lia) == 0
    p = flip.FlipParams(axes=[0])
    x = torch.arange(8.0).reshape(2, 2, 2)
    s = Sample(x, x.long(), mask=x > 3)
    once = flip.apply(p, s)
    assert torch.equal(once.labels, once.image.long()) and torch.equal(once.mask, once.image > 3)
    assert torch.equal(flip.apply(p, once).image, x)
