"""Shapes and basic behaviour of the GAN family's networks and losses (tiny sizes, CPU)."""

from __future__ import annotations

import pytest
import torch

from lesionsynth.generative import seeded_build
from lesionsynth.generative.gan.losses import feature_matching, gradient_penalty
from lesionsynth.generative.gan.nets import (
    ConditionalDiscriminator,
    MaskCritic,
    MaskGenerator,
    Pix2PixGenerator,
    SpadeGenerator,
)


@pytest.mark.parametrize("shape", [(16, 16, 16), (32, 32)])
def test_gan_mask_generator_and_critic_shapes(shape):
    dims = len(shape)
    g = MaskGenerator(shape, latent_dim=8, channels=(16, 8, 4), spatial_dims=dims)
    d = MaskCritic(shape, channels=(4, 8), spatial_dims=dims)
    x = g(torch.randn(3, 8))
    assert x.shape == (3, 1, *shape)
    s = d(torch.sigmoid(x))
    assert s.shape == (3,)


def test_gan_mask_generator_rejects_indivisible_shape():
    with pytest.raises(ValueError, match="divisible by 4"):
        MaskGenerator((16, 18, 16), latent_dim=8, channels=(16, 8, 4))


@pytest.mark.parametrize("dims,shape", [(2, (64, 64)), (3, (32, 32, 32))])
def test_gan_translator_generators_shapes_and_range(dims, shape):
    k = 6
    labels = torch.nn.functional.one_hot(torch.randint(0, k, (2, *shape)), k).movedim(-1, 1).float()
    for g in (Pix2PixGenerator(dims, k, (4, 8, 16)), SpadeGenerator(dims, k, shape, (16, 8, 4), 4, 8)):
        y = g(labels)
        assert y.shape == (2, 1, *shape)
        assert y.min() >= -1 and y.max() <= 1


@pytest.mark.parametrize("num_d", [1, 2])
def test_gan_conditional_discriminator_outputs_and_features(num_d):
    k = 6
    d = ConditionalDiscriminator(2, k, channels=4, num_layers=2, num_d=num_d, min_size=64)
    outs, feats = d(torch.randn(2, k, 64, 64), torch.randn(2, 1, 64, 64))
    assert len(outs) == num_d and len(feats) == num_d
    assert all(o.shape[:2] == (2, 1) for o in outs)
    assert all(len(f) >= 2 for f in feats)
    assert feature_matching(feats, feats) == 0


def test_gan_seeded_build_is_reproducible_and_keeps_global_rng():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = seeded_build(5, lambda: MaskCritic((16, 16, 16), (4, 8)))
    b = seeded_build(5, lambda: MaskCritic((16, 16, 16), (4, 8)))
    c = seeded_build(6, lambda: MaskCritic((16, 16, 16), (4, 8)))
    assert torch.equal(torch.get_rng_state(), before)
    pa, pb, pc = (torch.cat([p.flatten() for p in m.parameters()]) for m in (a, b, c))
    assert torch.equal(pa, pb)
    assert not torch.equal(pa, pc)


class _Linear(torch.nn.Module):
    """f(x) = <w, x>: its gradient norm is ||w|| everywhere."""

    def __init__(self, w):
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x):
        return (x.flatten(1) * self.w.flatten()).sum(1)


@pytest.mark.parametrize("norm,expected", [(1.0, 0.0), (2.0, 1.0), (3.0, 4.0)])
def test_gan_gradient_penalty_of_a_linear_critic(norm, expected):
    w = torch.randn(1, 4, 4, 4)
    w = w / w.norm() * norm
    real, fake = torch.rand(3, 1, 4, 4, 4), torch.rand(3, 1, 4, 4, 4)
    gp = gradient_penalty(_Linear(w), real, fake, torch.Generator().manual_seed(0))
    assert float(gp.detach()) == pytest.approx(expected, abs=1e-4)
