"""Flip test-time augmentation: the right average, flip-consistent, and the disagreement map."""

from __future__ import annotations

import numpy as np
import torch
from test_infer_toys import (
    RAW,
    BrightLesionNet,
    make_affine,
    tiny_unet,
    toy_scan,
)

from lesionsynth.infer import PredictConfig, predict_volume
from lesionsynth.infer.sliding import flip_combinations, windowed_logits


def symmetric_scan(n: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """A 1 mm RAS volume symmetric under flipping each axis (ellipsoids centred on the grid)."""
    c = np.linspace(-1.0, 1.0, n)
    x, y, z = np.meshgrid(c, c, c, indexing="ij")
    r = np.sqrt((x / 0.8) ** 2 + (y / 0.9) ** 2 + (z / 0.75) ** 2)
    img = np.where(r < 1, 0.3, 0.0) + np.where(r < 0.7, 0.5, 0.0) + np.where(np.abs(x) < 0.2, 0.4, 0.0) * (r < 1)
    A = make_affine((n, n, n), spacing=1.0)
    return img.astype(np.float32), A


def test_eight_flips():
    f = flip_combinations(True)
    assert len(f) == 8 and len(set(f)) == 8 and () in f and (2, 3, 4) in f
    assert flip_combinations(False) == [()]


def test_tta_logits_are_the_mean_of_unflipped_flipped_passes():
    model, _ = tiny_unet(seed=3)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 1, 16, 20, 12, generator=g)
    with torch.inference_mode():
        ref = torch.stack([torch.flip(model(torch.flip(x, f)), f) if f else model(x)
                           for f in flip_combinations(True)]).mean(0)[0]
        ref_votes = torch.stack([(torch.flip(model(torch.flip(x, f)), f) if f else model(x)).argmax(1)[0]
                                 for f in flip_combinations(True)])
    for bs in (1, 3, 8):  # one window covering the volume: the Gaussian weights cancel
        logits, dis = windowed_logits(model, x, (16, 20, 12), tta=True, batch_size=bs)
        torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)
        expect = (ref_votes != ref.argmax(0)).float().mean(0)
        torch.testing.assert_close(dis, expect)
    no_tta, none = windowed_logits(model, x, (16, 20, 12), tta=False)
    assert none is None
    assert not torch.allclose(no_tta, ref, atol=1e-3)  # a random UNet is not flip-equivariant


def test_tta_on_a_symmetric_input_is_symmetric():
    img, A = symmetric_scan()
    model, _ = tiny_unet(seed=1)
    cfg = PredictConfig(save_probabilities=True)
    tta = predict_volume(model, img, A, config=cfg)
    plain = predict_volume(model, img, A, config=PredictConfig(tta=False, save_probabilities=True))
    asym_plain = 0.0
    for ax in range(3):
        np.testing.assert_allclose(tta.probs, np.flip(tta.probs, 1 + ax), atol=1e-5)
        np.testing.assert_array_equal(tta.labels, np.flip(tta.labels, ax))
        np.testing.assert_allclose(tta.uncertainty, np.flip(tta.uncertainty, ax), atol=1e-6)
        asym_plain = max(asym_plain, float(np.abs(plain.probs - np.flip(plain.probs, 1 + ax)).max()))
    assert asym_plain > 1e-3  # without TTA the same network is not symmetric: the check can fail
    assert tta.uncertainty.max() > 0 and tta.uncertainty.min() >= 0 and tta.uncertainty.max() <= 1
    assert plain.uncertainty is None


def test_flip_equivariant_model_gives_same_result_with_and_without_tta():
    A = make_affine((30, 34, 26), spacing=1.5, flip_x=True)
    img, _ = toy_scan(A, (30, 34, 26))
    net = BrightLesionNet()
    a = predict_volume(net, img, A, config=PredictConfig(window=24, save_probabilities=True), preprocessing=RAW)
    b = predict_volume(net, img, A, config=PredictConfig(window=24, tta=False, save_probabilities=True),
                       preprocessing=RAW)
    np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)
    assert a.lesion.sum() > 0
    assert float(a.uncertainty.max()) == 0.0
