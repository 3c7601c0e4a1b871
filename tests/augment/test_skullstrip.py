"""Random skull-strip."""

import torch

from conftest import label_cube as _labels
from lesionsynth.augment import skullstrip
from lesionsynth.augment.base import Sample


def test_skullstrip_uses_labels():
    lab = _labels()
    img = torch.rand(32, 32, 32) + 1
    out = skullstrip.apply(skullstrip.SkullStripParams(True, 0), Sample(img, lab)).image
    assert torch.equal(out[lab > 0], img[lab > 0])
    assert (out[lab == 0] == img.min()).all()
    dil = skullstrip.brain_mask(lab, 0, 2)
    ero = skullstrip.brain_mask(lab, 0, -2)
    assert dil.sum() > (lab > 0).sum() > ero.sum()
