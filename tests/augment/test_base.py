"""The transform contract every module follows (:mod:`lesionsynth.augment.base`)."""

import numpy as np
import torch

from conftest import label_cube as _labels
from lesionsynth.augment import bias, blur, gamma, motion, noise
from lesionsynth.augment.base import Sample
from lesionsynth.augment.chain import REGISTRY


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
