"""Dice + cross-entropy with a per-sample mask of the classes a dataset labels.

Every training sample comes with ``labelled`` (one bool per schema class): the classes its dataset
delineates. Synthetic data label every class. A real dataset that labels only lesions (ATLAS-style,
``{"background": 0, "lesion": 1}``) labels ``background`` and ``lesion`` only, and its "background" is
really *everything that is not lesion* (grey matter, white matter, CSF, ... and true background).

**Cross-entropy** is computed on the *marginal* distribution of the labelled partition (Shi et al.,
"Marginal loss and exclusion loss for partially supervised multi-organ segmentation", 2021): the
probabilities of the background class and of every class the dataset does not label are summed into
one "rest" bucket, and the voxels the dataset calls background are scored against that bucket. For a
fully labelled sample the bucket is the background class alone, so this is ordinary cross-entropy over
all classes, background included. For a lesion-only sample it is the binary cross-entropy of the
lesion channel, ``-[y log p_lesion + (1 - y) log(1 - p_lesion)]``: predicting white matter inside the
brain costs nothing, predicting lesion where there is none does.

**Dice** (MONAI ``DiceLoss``, soft, softmax, per sample and class) is averaged over the labelled
*foreground* classes: background is excluded by default (``dice_include_background``), and is always
excluded for partially labelled samples, whose "background" is not the schema's background. For a
lesion-only sample the Dice term is the lesion channel's alone. With ``dice_skip_absent`` a class that a
sample's target does not contain is left out of that sample's Dice term (its soft Dice would be ~1 unless the
class is predicted nowhere, a reward for switching a rare class off); the cross-entropy still scores it.

Total: ``ce_weight * CE + dice_weight * Dice``. Classes a sample does not label therefore receive no
gradient from it, except through the softmax normalisation of the lesion (and other labelled) channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss
from torch import nn


class MaskedDiceCELoss(nn.Module):
    """Dice + cross-entropy restricted to the classes each sample labels.

    Args:
        background: index of the background class.
        dice_weight: weight of the Dice term.
        ce_weight: weight of the cross-entropy term.
        dice_include_background: include background in the Dice term of fully labelled samples.
        class_weights: optional per-class weights of the Dice term (a weighted mean over the selected
            classes). The cross-entropy stays unweighted: weighting it would shift the predicted class
            priors (over-segmentation of up-weighted classes).
        dice_skip_absent: leave out of a sample's Dice term the classes its target does not contain.
    """

    def __init__(self, background: int = 0, dice_weight: float = 1.0, ce_weight: float = 1.0,
                 dice_include_background: bool = False, class_weights: list[float] | None = None,
                 dice_skip_absent: bool = False):
        super().__init__()
        self.background = background
        self.dice_weight = dice_weight
        self.ce_weight = ce_weight
        self.dice_include_background = dice_include_background
        self.class_weights = None if class_weights is None else torch.as_tensor(class_weights, dtype=torch.float32)
        self.dice_skip_absent = dice_skip_absent
        self.dice = DiceLoss(include_background=True, to_onehot_y=True, softmax=True, reduction="none")

    def forward(self, logits: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor | None = None) -> torch.Tensor:
        """Loss of ``logits`` (B, C, X, Y, Z) against ``target`` (B, 1, X, Y, Z) or (B, X, Y, Z).

        Args:
            logits: raw network outputs.
            target: integer schema labels; a partially labelled sample marks everything it does not
                delineate as background.
            labelled: (B, C) bool, the classes each sample labels (default: all).

        Returns:
            Scalar loss (float32).
        """
        B, C = logits.shape[:2]
        if target.ndim == logits.ndim - 1:
            target = target[:, None]
        target = target.long()
        logits = logits.float()
        if labelled is None:
            labelled = torch.ones(B, C, dtype=torch.bool, device=logits.device)
        labelled = labelled.to(device=logits.device, dtype=torch.bool)
        is_bg = torch.arange(C, device=logits.device) == self.background
        full = labelled.all(dim=1, keepdim=True)  # (B, 1)
        loss = logits.new_zeros(())
        if self.ce_weight:
            loss = loss + self.ce_weight * self._marginal_ce(logits, target, labelled, is_bg)
        if self.dice_weight:
            per = self.dice(logits, target).reshape(B, C)  # (B, C) 1 - Dice per sample and class
            use = labelled & ~is_bg[None]
            if self.dice_include_background:
                use = use | (is_bg[None] & full)
            if self.dice_skip_absent:
                present = torch.zeros(B, C, dtype=torch.bool, device=logits.device).scatter_(
                    1, target.flatten(1), True)  # (B, C): the classes each sample's target holds
                use = use & present
            if use.any():
                if self.class_weights is None:
                    loss = loss + self.dice_weight * per[use].mean()
                else:
                    w = self.class_weights.to(per.device)[None].expand(B, C)[use]
                    loss = loss + self.dice_weight * (per[use] * w).sum() / w.sum()
        return loss

    def _marginal_ce(self, logits: torch.Tensor, target: torch.Tensor, labelled: torch.Tensor,
                     is_bg: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with background and unlabelled classes merged into one bucket per sample."""
        logp = F.log_softmax(logits, dim=1)
        merge = (~labelled) | is_bg[None]                             # (B, C): the "rest" bucket
        spatial = (1,) * (logits.ndim - 2)
        bucket = torch.logsumexp(logp.masked_fill(~merge.view(*merge.shape, *spatial), float("-inf")),
                                 dim=1)                                # (B, X, Y, Z)
        merged = torch.cat([logp[:, :self.background], bucket[:, None], logp[:, self.background + 1:]], 1)
        return F.nll_loss(merged, target[:, 0])
