import numpy as np
import pytest
import torch

from lesionsynth.augment import (
    AugmentConfig,
    apply_chain,
    bias,
    blur,
    flip,
    gamma,
    lowres,
    motion,
    noise,
    normalize,
    sample_chain,
    skullstrip,
    spatial,
)
from lesionsynth.augment.base import Sample
from lesionsynth.augment.chain import REGISTRY, ChainParams


def _labels():
    lab = torch.zeros(32, 32, 32, dtype=torch.long)
    lab[6:26, 6:26, 6:26] = 1
    lab[10:22, 8:20, 12:24] = 2
    lab[14:18, 14:24, 10:14] = 3
    return lab


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


def test_each_transform_is_deterministic_given_params():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(24, 24, 24) + 0.5
    cases = [
        (bias.sample(g, bias.BiasConfig(p=1)), bias.apply),
        (gamma.sample(g, gamma.GammaConfig(p=1)), gamma.apply),
        (motion.sample(g, motion.MotionConfig(p=1)), motion.apply),
        (noise.sample(g, noise.NoiseConfig(p=1)), noise.apply),
        (blur.sample(g, blur.BlurConfig(p=1)), blur.apply),
    ]
    lab = torch.ones(24, 24, 24, dtype=torch.long)
    for p, f in cases:
        a, b = f(p, Sample(x, lab)), f(p, Sample(x, lab))
        assert torch.equal(a.image, b.image) and a.labels is lab  # intensity transforms leave the labels
        assert not torch.allclose(a.image, x), type(p).__name__


def test_lowres_blurs_only_its_axis():
    x = torch.zeros(32, 32, 32)
    x[:, :, 16] = 1
    x[16, :, :] += 1
    out = lowres.apply(lowres.LowResParams(axis=2, thickness_mm=6.0), Sample(x)).image
    assert out[5, 5, 16] < 0.6  # the thin slab along z is smeared
    assert torch.allclose(out[16, 5, 5], torch.tensor(1.0), atol=0.1) or out[16, 5, 5] > 0.8


def test_skullstrip_uses_labels():
    lab = _labels()
    img = torch.rand(32, 32, 32) + 1
    out = skullstrip.apply(skullstrip.SkullStripParams(True, 0), Sample(img, lab)).image
    assert torch.equal(out[lab > 0], img[lab > 0])
    assert (out[lab == 0] == img.min()).all()
    dil = skullstrip.brain_mask(lab, 0, 2)
    ero = skullstrip.brain_mask(lab, 0, -2)
    assert dil.sum() > (lab > 0).sum() > ero.sum()


def test_flip_lr_axis_from_affine():
    lia = np.array([[-1, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 0], [0, 0, 0, 1.0]])
    assert flip.lr_axis(lia) == 0
    p = flip.FlipParams(axes=[0])
    x = torch.arange(8.0).reshape(2, 2, 2)
    s = Sample(x, x.long(), mask=x > 3)
    once = flip.apply(p, s)
    assert torch.equal(once.labels, once.image.long()) and torch.equal(once.mask, once.image > 3)
    assert torch.equal(flip.apply(p, once).image, x)


def test_chain_replays_from_record_and_zscores():
    lab = _labels()
    img = lab.float() * 50 + 10
    cfg = AugmentConfig()
    cfg.spatial.crop_size = (24, 24, 24)
    g = torch.Generator().manual_seed(5)
    p = sample_chain(g, cfg, np.eye(4))
    a_img, a_lab, _ = apply_chain(p, cfg, img, lab, np.eye(4))
    replay = ChainParams.from_dict(p.to_dict())
    b_img, b_lab, _ = apply_chain(replay, cfg, img, lab, np.eye(4))
    assert torch.equal(a_img, b_img) and torch.equal(a_lab, b_lab)
    assert abs(float(a_img.mean())) < 1e-4 and abs(float(a_img.std()) - 1) < 1e-3


def test_percentiles_and_clip():
    x = torch.arange(1000.0).reshape(10, 10, 10)
    out = normalize.apply(normalize.ClipParams(1.0, 99.0), Sample(x)).image
    assert out.min() >= 9 and out.max() <= 990


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


def test_chain_with_cached_strip_masks_matches_labels():
    lab = _labels()
    cfg = AugmentConfig()
    cfg.spatial.crop_size = (24, 24, 24)
    cfg.skullstrip.p = 1.0
    p = sample_chain(torch.Generator().manual_seed(2), cfg, np.eye(4))
    cache: dict = {}
    img, out_lab, _ = apply_chain(p, cfg, lab.float() * 40 + 5, lab, np.eye(4), strip_masks=cache)
    assert p.skullstrip.radius in cache
    outside = skullstrip.brain_mask(out_lab, 0, p.skullstrip.radius + 1) == 0
    assert outside.any() and torch.allclose(img[outside], img.min())


def test_registry_derives_the_chain_config_params_and_order():
    names = [t.name for t in REGISTRY]
    assert names == ["spatial", "bias", "gamma", "motion", "lowres", "noise", "blur", "skullstrip", "flip", "clip"]
    cfg = AugmentConfig()
    assert [f for f in vars(cfg) if f != "zscore"] == names and cfg.zscore is True
    for t in REGISTRY:
        assert isinstance(getattr(cfg, t.name), t.config)
    p = sample_chain(torch.Generator().manual_seed(0), cfg, np.eye(4))
    assert list(p.to_dict()) == names
    assert all(isinstance(getattr(p, t.name), t.params) for t in REGISTRY)


def test_every_transform_follows_one_contract():
    """sample(gen, cfg, affine) -> Params; apply(params, Sample) -> Sample on the same labels' grid."""
    lab = _labels()
    aff = np.diag([1.5, 1.5, 1.5, 1.0])
    for t in REGISTRY:
        cfg = t.config()
        for key in ("p", "p_affine", "p_elastic"):
            if hasattr(cfg, key):
                setattr(cfg, key, 1.0)
        params = t.sample(torch.Generator().manual_seed(3), cfg, aff)
        assert isinstance(params, t.params)
        assert t.params(**params.__dict__) == params  # plain values: recordable and replayable
        s = Sample(lab.float() * 30 + 5, lab, aff)
        a, b = t.apply(params, s), t.apply(params, s)
        assert isinstance(a, Sample) and torch.equal(a.image, b.image), t.name
        assert a.labels is not None and a.labels.shape == a.image.shape, t.name


def test_augment_config_pickles_for_data_loader_workers():
    import pickle

    cfg = AugmentConfig()
    cfg.flip.p = 0.25
    assert pickle.loads(pickle.dumps(cfg)) == cfg
