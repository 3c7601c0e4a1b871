"""DDIM sampling with classifier-free guidance, for any batch size and either denoiser.

With guidance scale G the noise estimate is ``eps = eps_u + G (eps_c - eps_u)``: the batch is duplicated
(latents, timesteps *and* the condition, including SPADE's ``seg``), the first half is marked ``null``
(null token / all-zero label map), and one forward pass gives both estimates. G = 1 needs only the
conditional half and skips the duplication.

Each sample's initial noise comes from its own seeded generator, so a sample depends on its seed and
condition only, not on the batch it was drawn in. DDIM runs with eta = 0 (no further noise).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lesionsynth.ops import make_generator


def initial_noise(seeds: Sequence[int], shape: Sequence[int], device: torch.device | str = "cpu"
                  ) -> torch.Tensor:
    """(len(seeds), *shape) standard normal noise, one CPU generator per seed (device independent)."""
    return torch.stack([torch.randn(tuple(shape), generator=make_generator(s)) for s in seeds]).to(device)


def guided_eps(denoiser: nn.Module, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor,
               guidance: float) -> torch.Tensor:
    """Classifier-free guided noise estimate for latents ``x`` at timesteps ``t`` (B,)."""
    B = x.shape[0]
    if guidance == 1.0:
        return denoiser(x, t, cond, torch.zeros(B, dtype=torch.bool, device=x.device))
    null = torch.cat([torch.ones(B, dtype=torch.bool), torch.zeros(B, dtype=torch.bool)]).to(x.device)
    out = denoiser(torch.cat([x, x]), torch.cat([t, t]), torch.cat([cond, cond]), null)
    eps_u, eps_c = out.chunk(2)
    return eps_u + guidance * (eps_c - eps_u)


@torch.no_grad()
def ddim_sample(denoiser: nn.Module, scheduler, noise: torch.Tensor, cond: torch.Tensor,
                guidance: float, progress: bool = False) -> torch.Tensor:
    """Run the DDIM chain from ``noise`` (B, C, ...) to clean latents.

    Args:
        denoiser: a :class:`~lesionsynth.generative.ldm.nets.MaskDenoiser` or ``ImageDenoiser``.
        scheduler: a MONAI ``DDIMScheduler`` with its timesteps set.
        noise: initial latents (scaled latent space).
        cond: (B,) conditions c, or (B, K, X, Y, Z) one-hot label maps.
        guidance: classifier-free guidance scale G (0 = unconditional, 1 = conditional).
        progress: show a tqdm bar over the steps.
    """
    from lesionsynth.log import tqdm

    x = noise
    for t in tqdm(scheduler.timesteps, desc="ddim", leave=False, disable=not progress):
        tt = torch.full((x.shape[0],), int(t), dtype=torch.long, device=x.device)
        eps = guided_eps(denoiser, x, tt, cond, guidance)
        x, _ = scheduler.step(eps, int(t), x)
    return x
