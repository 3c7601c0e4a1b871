"""The chain: derived from the registry, replayable from its record, cached strip masks."""

import numpy as np
import torch

from conftest import label_cube as _labels
from lesionsynth.augment import AugmentConfig, apply_chain, sample_chain, skullstrip
from lesionsynth.augment.chain import REGISTRY, ChainParams


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


def test_augment_config_pickles_for_data_loader_workers():
    import pickle

    cfg = AugmentConfig()
    cfg.flip.p = 0.25
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def _label_fit_r2(img: torch.Tensor, lab: torch.Tensor) -> float:
    """Share of the image's variance a constant per label explains."""
    res = sum(float(((img[lab == c] - img[lab == c].mean()) ** 2).sum()) for c in lab.unique())
    return 1.0 - res / float(((img - img.mean()) ** 2).sum())


def test_every_geometric_step_moves_image_and_labels_together():
    """Affine, elastic, crop and flips on every axis, intensity corruption off: the image (made from the
    labels) stays in register with the returned labels on every draw, and a mis-registration (the
    labels flipped or shifted by a voxel or two) explains it worse."""
    lab = _labels()
    cfg = AugmentConfig()
    cfg.spatial.crop_size = (28, 28, 28)
    cfg.spatial.p_affine = cfg.spatial.p_elastic = 1.0
    for name in ("bias", "gamma", "motion", "lowres", "noise", "blur", "skullstrip"):
        getattr(cfg, name).p = 0.0
    cfg.flip.p = 0.5
    for seed in range(6):
        p = sample_chain(torch.Generator().manual_seed(seed), cfg, np.eye(4))
        img, out_lab, _ = apply_chain(p, cfg, lab.float() * 50, lab, np.eye(4))
        img = img[0] if img.ndim == 4 else img
        r2 = _label_fit_r2(img, out_lab)
        assert r2 > 0.8, (seed, r2)
        worse = [_label_fit_r2(img, out_lab.flip(a)) for a in range(3)]
        worse += [_label_fit_r2(img, out_lab.roll(s, a)) for a in range(3) for s in (-2, 2)]
        assert max(worse) < r2 - 0.05, (seed, r2, worse)
