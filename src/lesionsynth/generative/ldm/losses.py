"""Autoencoder losses: reconstruction terms and the KL divergence of the latent posterior.

No perceptual or adversarial term: nothing here needs pretrained weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kl_loss(z_mu: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma) || N(0, 1)), summed over latent voxels and channels, averaged over the batch."""
    kl = 0.5 * (z_mu.pow(2) + z_sigma.pow(2) - torch.log(z_sigma.pow(2).clamp_min(1e-12)) - 1.0)
    return kl.flatten(1).sum(1).mean()


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - mean soft Dice over the non-background classes, pooled over the batch.

    Args:
        logits: (B, K, X, Y, Z).
        target: (B, X, Y, Z) class indices.
        eps: smoothing added to numerator and denominator.
    """
    K = logits.shape[1]
    p = logits.softmax(1)[:, 1:]
    y = F.one_hot(target.long(), K).permute(0, 4, 1, 2, 3).to(p.dtype)[:, 1:]
    dims = (0, 2, 3, 4)
    inter = (p * y).sum(dims)
    denom = p.sum(dims) + y.sum(dims)
    return 1.0 - ((2 * inter + eps) / (denom + eps)).mean()


def mask_recon_loss(logits: torch.Tensor, target: torch.Tensor, dice_weight: float = 1.0
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy + ``dice_weight`` x soft Dice of label logits against class indices."""
    ce = F.cross_entropy(logits, target.long())
    dice = soft_dice_loss(logits, target)
    return ce + dice_weight * dice, {"ce": ce.item(), "dice": dice.item()}


def image_recon_loss(recon: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean absolute error."""
    l1 = (recon - target).abs().mean()
    return l1, {"l1": l1.item()}
