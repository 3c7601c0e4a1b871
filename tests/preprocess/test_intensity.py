"""lesionsynth.preprocess.intensity: one place for percentiles, z-score and [0, 1] scaling."""

import numpy as np
import pytest
import torch

from lesionsynth.preprocess import normalise_intensity, percentiles, scale_unit, zscore


def test_percentiles_are_exact_on_small_images():
    x = torch.arange(101.0)
    assert percentiles(x, [0.0, 50.0, 100.0]) == pytest.approx([0.0, 50.0, 100.0])


def test_zscore_over_a_mask():
    x = torch.tensor([0.0, 0.0, 1.0, 3.0])
    m = x > 0
    z = zscore(x, m)
    assert float(z[m].mean()) == pytest.approx(0.0, abs=1e-6)
    assert float(z[m].std()) == pytest.approx(1.0, abs=1e-6)


def test_scale_unit_by_the_upper_percentile_keeps_zero():
    img = torch.zeros(20, 20, 20)
    brain = torch.zeros_like(img, dtype=torch.bool)
    brain[5:15, 5:15, 5:15] = True
    img[brain] = torch.linspace(1.0, 200.0, int(brain.sum()))
    out = scale_unit(img, brain)
    hi = torch.quantile(img[brain], 0.995)
    assert torch.equal(out[~brain], torch.zeros_like(out[~brain]))
    assert torch.allclose(out, (img / hi).clamp(0, 1))


def test_scale_unit_by_a_percentile_range():
    img = torch.linspace(-50.0, 150.0, 8000).reshape(20, 20, 20)
    out = scale_unit(img, lower=0.5, upper=99.5)
    lo, hi = torch.quantile(img.flatten(), torch.tensor([0.005, 0.995]))
    assert torch.allclose(out, ((img - lo) / (hi - lo)).clamp(0, 1))
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0


def test_network_input_normalisation_ignores_a_linear_rescaling():
    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 10.0, size=(16, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(normalise_intensity(x), normalise_intensity(3.0 * x + 7.0), atol=1e-4)
    np.testing.assert_array_equal(normalise_intensity(x, "none"), x)
