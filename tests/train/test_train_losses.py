"""Dice + CE with per-sample class masks (partially labelled datasets)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss, DiceLoss

from lesionsynth.train.losses import MaskedDiceCELoss

LESION = 5


def _data(seed=0, shape=(2, 6, 8, 8, 8)):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=g) * 2
    target = torch.randint(0, shape[1], (shape[0], 1, *shape[2:]), generator=g)
    return logits, target


def test_fully_labelled_is_monai_dice_ce_without_background_dice():
    logits, target = _data()
    ours = MaskedDiceCELoss(background=0)(logits, target)
    ref = DiceCELoss(include_background=False, to_onehot_y=True, softmax=True)(logits, target)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_fully_labelled_with_background_dice():
    logits, target = _data(1)
    ours = MaskedDiceCELoss(background=0, dice_include_background=True)(logits, target)
    ref = DiceCELoss(include_background=True, to_onehot_y=True, softmax=True)(logits, target)
    assert torch.allclose(ours, ref, atol=1e-5)


def _lesion_only(logits, lesion_target):
    labelled = torch.zeros(logits.shape[0], logits.shape[1], dtype=torch.bool)
    labelled[:, [0, LESION]] = True
    target = torch.where(lesion_target, torch.tensor(LESION), torch.tensor(0))
    return MaskedDiceCELoss(background=0)(logits, target, labelled)


def test_lesion_only_sample_is_binary_lesion_loss():
    logits, t = _data(2)
    lesion = t == LESION
    loss = _lesion_only(logits, lesion)
    p_les = torch.softmax(logits, 1)[:, LESION:LESION + 1]
    y = lesion.float()
    bce = F.binary_cross_entropy(p_les, y)
    inter = (p_les * y).sum((2, 3, 4))
    dice = 1 - (2 * inter + 1e-5) / (p_les.sum((2, 3, 4)) + y.sum((2, 3, 4)) + 1e-5)
    assert torch.allclose(loss, bce + dice.mean(), atol=1e-5)


def test_lesion_only_ignores_how_non_lesion_probability_is_split():
    logits, t = _data(3)
    lesion = t == LESION
    swapped = logits.clone()
    swapped[:, [1, 2, 4]] = logits[:, [4, 1, 2]]  # move probability between tissue classes
    assert torch.allclose(_lesion_only(logits, lesion), _lesion_only(swapped, lesion), atol=1e-5)
    # ... whereas a fully labelled loss does care
    full = MaskedDiceCELoss()
    target = torch.where(lesion, torch.tensor(LESION), t)
    assert not torch.allclose(full(logits, target), full(swapped, target), atol=1e-3)
    # ... and the lesion-only loss does care about the lesion channel
    more = logits.clone()
    more[:, LESION] += 1.0
    assert not torch.allclose(_lesion_only(logits, lesion), _lesion_only(more, lesion), atol=1e-3)


def test_mixed_batch_masks_per_sample():
    logits, t = _data(4)
    labelled = torch.ones(2, 6, dtype=torch.bool)
    labelled[1, 1:5] = False  # second sample: lesion-only
    target = t.clone()
    target[1] = torch.where(t[1] == LESION, torch.tensor(LESION), torch.tensor(0))
    loss_fn = MaskedDiceCELoss()
    both = loss_fn(logits, target, labelled)
    first = loss_fn(logits[:1], target[:1], labelled[:1])
    second = loss_fn(logits[1:], target[1:], labelled[1:])
    # CE is a mean over all voxels of the batch, Dice a mean over the selected (sample, class) pairs
    ce1 = MaskedDiceCELoss(dice_weight=0)(logits[:1], target[:1], labelled[:1])
    ce2 = MaskedDiceCELoss(dice_weight=0)(logits[1:], target[1:], labelled[1:])
    d1, d2 = first - ce1, second - ce2
    expected = (ce1 + ce2) / 2 + (5 * d1 + 1 * d2) / 6
    assert torch.allclose(both, expected, atol=1e-5)


def test_gradient_flows_and_loss_is_finite_in_half_precision_logits():
    logits, t = _data(5)
    logits = logits.half().requires_grad_(True)
    loss = MaskedDiceCELoss()(logits, t)
    loss.backward()
    assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_class_weights_weight_the_dice_term():
    logits, t = _data(6)
    equal = MaskedDiceCELoss(class_weights=[1.0] * 6)(logits, t)
    assert torch.allclose(equal, MaskedDiceCELoss()(logits, t), atol=1e-5)
    w = [1.0, 1.0, 1.0, 1.0, 1.0, 5.0]
    weighted = MaskedDiceCELoss(class_weights=w)(logits, t)
    ce = F.cross_entropy(logits, t[:, 0])
    per = DiceLoss(include_background=True, to_onehot_y=True, softmax=True, reduction="none"
                   )(logits, t).reshape(2, 6)[:, 1:]
    dice = (per * torch.tensor(w[1:])).sum() / (2 * sum(w[1:]))
    assert torch.allclose(weighted, ce + dice, atol=1e-5)


def test_dice_skip_absent_drops_only_the_classes_a_sample_lacks():
    logits, t = _data(7)
    t[0][t[0] == LESION] = 2  # sample 0 has no lesion, sample 1 has every class
    per = DiceLoss(include_background=True, to_onehot_y=True, softmax=True, reduction="none")(logits, t).reshape(2, 6)
    ce = F.cross_entropy(logits, t[:, 0])
    kept = torch.cat([per[0, 1:LESION], per[1, 1:]])
    skip = MaskedDiceCELoss(dice_skip_absent=True)(logits, t)
    assert torch.allclose(skip, ce + kept.mean(), atol=1e-5)
    assert not torch.allclose(skip, MaskedDiceCELoss()(logits, t), atol=1e-4)
    # with every class present in every sample it is the ordinary loss
    _, full = _data(8)
    assert torch.allclose(MaskedDiceCELoss(dice_skip_absent=True)(logits, full), MaskedDiceCELoss()(logits, full))


def test_dice_skip_absent_removes_the_reward_for_switching_a_missing_class_off():
    logits, t = _data(9, shape=(1, 6, 8, 8, 8))
    t[t == LESION] = 1
    off = logits.clone()
    off[:, LESION] = -30.0  # lesion predicted nowhere
    for skip, rewarded in ((False, True), (True, False)):
        loss = MaskedDiceCELoss(class_weights=[1, 1, 1, 1, 1, 3], dice_skip_absent=skip)
        ce_gain = F.cross_entropy(logits, t[:, 0]) - F.cross_entropy(off, t[:, 0])
        dice_gain = loss(logits, t) - loss(off, t) - ce_gain  # the lesion's share of the weights is 3/7
        assert (dice_gain > 0.3) == rewarded, (skip, float(dice_gain))
