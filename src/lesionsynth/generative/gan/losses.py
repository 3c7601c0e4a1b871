"""GAN objectives: WGAN-GP for the mask GAN; LSGAN/hinge + L1 + feature matching for the translators."""

from __future__ import annotations

import torch
import torch.nn as nn
from monai.losses import PatchAdversarialLoss


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     gen: torch.Generator) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017): E[(||grad critic(x_hat)|| - 1)^2].

    ``x_hat`` mixes each real sample with a fake one at a uniform random fraction drawn from ``gen``.
    """
    b = real.shape[0]
    eps = torch.rand((b,) + (1,) * (real.ndim - 1), generator=gen, device=gen.device).to(real)
    x_hat = (eps * real + (1.0 - eps) * fake.detach()).requires_grad_(True)
    score = critic(x_hat)
    (grad,) = torch.autograd.grad(score.sum(), x_hat, create_graph=True)
    return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()


def wgan_critic_loss(score_real: torch.Tensor, score_fake: torch.Tensor) -> torch.Tensor:
    """Critic loss without the penalty: E[D(fake)] - E[D(real)] (its negative estimates W1)."""
    return score_fake.mean() - score_real.mean()


def wgan_generator_loss(score_fake: torch.Tensor) -> torch.Tensor:
    return -score_fake.mean()


def adversarial_loss(criterion: str) -> PatchAdversarialLoss:
    """MONAI's patch adversarial loss; least squares without the extra activation (plain LSGAN)."""
    return PatchAdversarialLoss(criterion=criterion, no_activation_leastsq=True)


def feature_matching(feats_fake: list[list[torch.Tensor]],
                     feats_real: list[list[torch.Tensor]]) -> torch.Tensor:
    """Mean L1 distance between discriminator features of fake and (detached) real inputs (pix2pixHD)."""
    diffs = [(a - b.detach()).abs().mean() for ff, fr in zip(feats_fake, feats_real, strict=True)
             for a, b in zip(ff, fr, strict=True)]
    return sum(diffs, feats_fake[0][0].new_zeros(())) / max(len(diffs), 1)
