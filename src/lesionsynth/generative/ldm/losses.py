"""Autoencoder losses: reconstruction terms and the KL divergence of the latent posterior.

No perceptual or adversarial term: nothing here needs pretrained weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

# 1 - mean soft Dice over the non-background classes, pooled over the batch, smoothing 1
_DICE = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True, smooth_nr=1.0, smooth_dr=1.0)


def kl_loss(z_mu: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, 1)), summed over latent voxels and channels, averaged over the batch."""
    kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2).clamp_min(1e-12)) - 1.0)
    return kl.flatten(1).sum(1).mean()


def mask_recon_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy + ``dice_weight`` x soft Dice of label logits against class indices."""
    ce = F.cross_entropy(logits, target.long())
    dice = _DICE(logits, target.long()[:, None])
    return ce + dice_weight * dice, {"ce": ce.item(), "dice": dice.item()}


def image_recon_loss(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean absolute error."""
    l1 = (recon - target).abs().mean()
    return l1, {"l1": l1.item()}
