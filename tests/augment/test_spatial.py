"""The spatial transform: exact identity crop, image/labels/mask stay aligned."""

import numpy as np
import pytest
import torch

from conftest import label_cube as _labels
from lesionsynth.augment import spatial
from lesionsynth.augment.base import Sample


def test_spatial_identity_is_exact_crop():
    lab = _labels()
    img = torch.rand(32, 32, 32)
    p = spatial.SpatialParams(crop_size=(16, 16, 16))
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    out = spatial.apply(p, Sample(img, lab, aff, centre_vox=np.array([15.5, 15.5, 15.5])))
    assert torch.allclose(out.image, img[8:24, 8:24, 8:24], atol=1e-5)
    assert torch.equal(out.labels, lab[8:24, 8:24, 8:24])
    np.testing.assert_allclose(out.affine[:3, 3], [16, 16, 16])
    assert out.centre_vox is None and out.mask is None


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_image_and_labels_stay_aligned(seed):
    """An image that *is* the label map, deformed with the labels, still equals them."""
    lab = _labels()
    img = lab.float() * 100
    cfg = spatial.SpatialConfig(crop_size=(28, 28, 28), rotation_deg=20, scaling=0.2, shear=0.05,
                                elastic_max_mm=3, elastic_spacing_mm=16, p_elastic=1)
    p = spatial.sample(torch.Generator().manual_seed(seed), cfg)
    assert p.elastic_std_mm > 0
    out = spatial.apply(p, Sample(img, lab))
    out_img, out_lab = out.image, out.labels
    assert p.crop_size == (28, 28, 28) and out_lab.shape == (28, 28, 28)  # the draw records the grid
    agree = (out_img / 100).round().long() == out_lab
    assert agree.float().mean() > 0.97  # disagreement only at partial-volume edges
    assert not torch.equal(out_lab, lab[2:30, 2:30, 2:30])  # it did deform


def test_mask_rides_along_with_labels():
    lab = _labels()
    cfg = spatial.SpatialConfig(crop_size=(28, 28, 28), p_elastic=1, elastic_max_mm=3, elastic_spacing_mm=16)
    p = spatial.sample(torch.Generator().manual_seed(4), cfg)
    img = torch.rand(32, 32, 32)
    out = spatial.apply(p, Sample(img, lab, mask=lab >= 2))
    ref = spatial.apply(p, Sample(img, lab))
    assert torch.equal(out.labels, ref.labels) and torch.equal(out.image, ref.image)
    assert torch.equal(out.mask, out.labels >= 2) and ref.mask is None
    alone = spatial.apply(p, Sample(img, mask=lab >= 2))  # a mask without labels moves the same way
    assert alone.labels is None and torch.equal(alone.mask, out.mask)
