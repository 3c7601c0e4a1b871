"""Speed options keep the accuracy: ``--fast`` (one pass), foreground-box windowing, window size.

Uses a tiny UNet trained for a few seconds on the toy scans (tests/infer/test_infer_toys.py), so the
comparisons are between real (if small) segmentations, not random outputs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_infer_toys import (
    TRAIN_SPACING,
    dice,
    make_affine,
    toy_scan,
    train_toy_unet,
)

from lesionsynth.infer import PredictConfig, predict_volume
from lesionsynth.infer.predict import Segmenter
from lesionsynth.labels import TISSUE
from lesionsynth.preprocess import Preprocessing

SHAPE = (26, 25, 23)
CASES = [((5.0, -4.0, 2.0), 5.0), ((-6.0, 3.0, -2.0), 6.0), ((2.0, 8.0, 4.0), 4.5)]


@pytest.fixture(scope="module")
def segmenter():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    model, cfg = train_toy_unet(steps=120)
    torch.set_num_threads(n)
    pre = Preprocessing(spacing=TRAIN_SPACING, patch_size=(24, 24, 24))  # as a training run records it
    return Segmenter(model, TISSUE, pre, divisor=cfg.divisor)


def held_out(k: int, shape=SHAPE):
    A = make_affine(shape, 1.7, flip_x=True, rot=(5.0, 0.0, -8.0))
    img, truth = toy_scan(A, shape, "flair", lesions=(CASES[k],), noise=0.02, seed=100 + k)
    return img * (0.7 + 0.4 * k), truth, A


def count_passes(model: torch.nn.Module) -> list[int]:
    calls = [0]
    model.register_forward_hook(lambda m, i, o: calls.__setitem__(0, calls[0] + i[0].shape[0]))
    return calls


def lesion_dice(seg, cfg: PredictConfig) -> list[float]:
    out = []
    for k in range(len(CASES)):
        img, truth, A = held_out(k)
        out.append(dice(predict_volume(seg, img, A, config=cfg).lesion, truth))
    return out


def test_fast_mode_is_as_accurate_and_runs_one_pass_per_window(segmenter):
    full = lesion_dice(segmenter, PredictConfig())
    fast = lesion_dice(segmenter, PredictConfig(fast=True))
    assert min(full) > 0.6, full  # the toy model really segments the lesions
    assert abs(np.mean(fast) - np.mean(full)) < 0.06, (full, fast)
    calls = count_passes(segmenter.model)
    img, _, A = held_out(0)
    p = predict_volume(segmenter, img, A, config=PredictConfig(fast=True))
    assert calls[0] == 1 and p.uncertainty is None
    calls[0] = 0
    predict_volume(segmenter, img, A, config=PredictConfig())
    assert calls[0] == 8


def test_foreground_box_and_window_size_keep_the_accuracy(segmenter):
    img, truth, A = held_out(1, shape=(30, 30, 28))  # a little background around the head
    ref = predict_volume(segmenter, img, A, config=PredictConfig(crop_foreground=False))
    for cfg in (PredictConfig(), PredictConfig(window=192)):  # sliding 24^3 windows / one window
        p = predict_volume(segmenter, img, A, config=cfg)
        assert (p.labels == ref.labels).mean() > 0.95, cfg
        assert dice(p.lesion, truth) > dice(ref.lesion, truth) - 0.05, cfg
    # much empty field of view: z-scoring the head's box (not the whole volume) keeps the accuracy
    img, truth, A = held_out(1, shape=(40, 42, 36))
    crop = dice(predict_volume(segmenter, img, A, config=PredictConfig()).lesion, truth)
    whole = dice(predict_volume(segmenter, img, A, config=PredictConfig(crop_foreground=False)).lesion, truth)
    assert crop > 0.6 and crop >= whole - 0.02, (crop, whole)
