"""The lesion-mask GAN: a latent-vector generator and a WGAN-GP critic on a coarse MNI grid.

Training (``lesionsynth gan train-masks``): each generator step is preceded by ``n_critic`` critic
steps on real masks (area-averaged onto the coarse grid, mirrored left-right at random) and generated
lesion probabilities (sigmoid of the generator's logits). The critic loss is
``D(fake) - D(real) + gp_weight * GP + drift * D(real)^2`` and the generator loss ``-D(fake)``.
All randomness of step ``t`` comes from a generator seeded with ``case_seed(seed, t)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lesionsynth.config import from_dict
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative import optimiser_step, read_cache, seeded_build
from lesionsynth.generative.gan.grid import MaskGrid
from lesionsynth.generative.gan.losses import gradient_penalty, wgan_critic_loss, wgan_generator_loss
from lesionsynth.generative.gan.mask_data import check_flip_grid, load_coarse_masks, real_batch, to_one_hemisphere
from lesionsynth.generative.gan.nets import MaskCritic, MaskGenerator
from lesionsynth.generative.gan.preview import save_mask_grid
from lesionsynth.generative.gan.trainer import GANTrainer, resume_state, train_gan
from lesionsynth.io.atomic import write_text_atomic
from lesionsynth.models.checkpoint import save_checkpoint
from lesionsynth.ops import case_seed, make_generator
from lesionsynth.runs import RunFolder, read_run_checkpoint

KIND = "mask-gan"


@dataclass
class MaskGANConfig:
    """Lesion-mask GAN settings (``configs/gan-masks.yaml``).

    Attributes:
        grid: the coarse grid (spacing, shape, centre in MNI mm).
        latent_dim: latent vector size.
        gen_channels: generator channels per level, coarsest first (len - 1 up-samplings by 2).
        critic_channels: critic channels of its strided convolutions.
        objective: ``wgan-gp`` (the only one implemented).
        gp_weight: gradient-penalty weight (lambda).
        drift: weight of the E[D(real)^2] drift term that keeps critic scores near 0.
        n_critic: critic steps per generator step.
        batch_size: masks per batch.
        lr_g: generator learning rate (Adam).
        lr_d: critic learning rate (Adam).
        betas: Adam betas.
        iterations: generator steps.
        flip_p: probability of mirroring a real mask left-right during training. Default 0: mixing the
            two mirrored modes made 21 of 100 generated masks bilateral; masks are instead put on one
            hemisphere (``hemisphere``) and mirrored at use (``gan build-dataset``'s ``flip_p``).
        hemisphere: ``left`` or ``right``: mirror real masks onto this side before training (grid centred
            on x = 0); ``none`` keeps them as they are.
        log_every: iterations between log rows / progress-bar updates.
        sample_every: iterations between PNG sample grids.
        checkpoint_every: iterations between checkpoints.
        smooth_mm: Gaussian sigma (mm) applied on the output grid before thresholding samples.
        threshold: probability threshold of the output masks.
        min_volume_ml: generated masks smaller than this (after thresholding, inside the brain) are
            redrawn with the next sub-seed.
    """

    grid: MaskGrid = field(default_factory=MaskGrid)
    latent_dim: int = 64
    gen_channels: tuple[int, ...] = (128, 64, 32, 16)
    critic_channels: tuple[int, ...] = (16, 32, 64, 128)
    objective: str = "wgan-gp"
    gp_weight: float = 10.0
    drift: float = 1e-3
    n_critic: int = 5
    batch_size: int = 8
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas: tuple[float, float] = (0.0, 0.9)
    iterations: int = 2000
    flip_p: float = 0.0
    hemisphere: str = "left"
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 50
    smooth_mm: float = 1.5
    threshold: float = 0.5
    min_volume_ml: float = 0.5

    def __post_init__(self) -> None:
        if self.objective != "wgan-gp":
            raise ValueError(f"objective '{self.objective}' is not implemented (use wgan-gp)")
        if len(self.gen_channels) < 2:
            raise ValueError("gen_channels needs at least two levels")
        n_up = len(self.gen_channels) - 1
        if any(s % 2 ** n_up for s in self.grid.shape):
            raise ValueError(f"grid.shape {tuple(self.grid.shape)} must be divisible by {2 ** n_up} "
                             f"({n_up} generator up-samplings)")
        for name in ("n_critic", "batch_size", "iterations", "log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")


def latent(index_seed: int, dim: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """The latent vector of one sample, from its own seed (independent of batching)."""
    return torch.randn(dim, generator=make_generator(index_seed)).to(device)


class MaskGANTrainer(GANTrainer):
    """Holds the nets, optimisers and data of one run; :meth:`step` does one generator step."""

    kind = KIND

    def __init__(self, cfg: MaskGANConfig, real: torch.Tensor, device: torch.device, seed: int = 0):
        check_flip_grid(cfg.grid, cfg.flip_p)
        if cfg.hemisphere not in ("left", "right", "none"):
            raise ConfigError(f"hemisphere must be left, right or none, got {cfg.hemisphere!r}")
        if tuple(real.shape[2:]) != tuple(cfg.grid.shape):
            raise ConfigError(f"real masks have shape {tuple(real.shape[2:])}, grid is {cfg.grid.shape}")
        self.cfg, self.device, self.seed = cfg, device, int(seed)
        self.real = (real if cfg.hemisphere == "none" else to_one_hemisphere(real, cfg.grid, cfg.hemisphere)).to(device)
        self.G = seeded_build(seed, lambda: MaskGenerator(cfg.grid.shape, cfg.latent_dim, cfg.gen_channels))
        self.D = seeded_build(seed + 1, lambda: MaskCritic(cfg.grid.shape, cfg.critic_channels))
        self._optimisers(device)

    def _fake(self, gen: torch.Generator) -> torch.Tensor:
        z = torch.randn(self.cfg.batch_size, self.cfg.latent_dim, generator=gen, device=gen.device)
        return torch.sigmoid(self.G(z.to(self.device)))

    def step(self) -> dict[str, float]:
        """One generator step (after ``n_critic`` critic steps); returns the losses."""
        cfg = self.cfg
        gen = make_generator(case_seed(self.seed, self.iteration))
        self.G.train()
        self.D.train()
        for _ in range(cfg.n_critic):
            real = real_batch(self.real, cfg.batch_size, cfg.flip_p, gen)
            with torch.no_grad():
                fake = self._fake(gen)
            s_real, s_fake = self.D(real), self.D(fake)
            w_loss = wgan_critic_loss(s_real, s_fake)
            gp = gradient_penalty(self.D, real, fake, gen)
            loss_d = w_loss + cfg.gp_weight * gp + cfg.drift * (s_real ** 2).mean()
            optimiser_step(self.opt_d, loss_d)
        fake = self._fake(gen)
        loss_g = wgan_generator_loss(self.D(fake))
        optimiser_step(self.opt_g, loss_g)
        self.iteration += 1
        vml = self.cfg.grid.voxel_ml
        w_loss, gp, loss_d, loss_g = (t.detach() for t in (w_loss, gp, loss_d, loss_g))
        return {"wasserstein": float(-w_loss), "gp": float(gp), "loss_d": float(loss_d), "loss_g": float(loss_g),
                "fake_ml": float(fake.detach().sum((1, 2, 3, 4)).mean()) * vml,
                "real_ml": float(real.sum((1, 2, 3, 4)).mean()) * vml}

    @torch.no_grad()
    def preview_probs(self, n: int = 8) -> torch.Tensor:
        """Lesion probabilities of ``n`` fixed latent vectors (the same in every sample grid)."""
        self.G.eval()
        z = torch.stack([latent(case_seed(self.seed + 7919, i), self.cfg.latent_dim) for i in range(n)])
        out = torch.sigmoid(self.G(z.to(self.device)))[:, 0].cpu()
        self.G.train()
        return out


def train_mask_gan(cfg: MaskGANConfig, lesions: str | Path | None, out: str | Path, device: torch.device,
                   seed: int = 0, resume: bool = False, progress: bool = True,
                   time_limit_min: float | None = None, max_masks: int | None = None) -> Path:
    """Train (or resume) a mask GAN on a folder of real masks; returns the checkpoint path.

    ``max_masks`` keeps only the first N masks (sorted by file name). On resume ``cfg`` may differ from
    the recorded config only in runtime keys and ``iterations`` (:func:`lesionsynth.runs.folder.config_for_start`
    gives the recorded one); the run's seed and lesion selection (recorded in ``RUN/lesions.json`` when
    ``lesions`` is None) are used.
    """
    run = RunFolder(out)
    if lesions is None and not (resume and run.last.is_file()):
        raise InputError("gan train-masks: --lesions FOLDER is required (folder of binary lesion masks)")
    ckpt, seed = resume_state(run, KIND, cfg, seed, resume)
    record = run.root / "lesions.json"
    if lesions is None:
        if not record.is_file():
            raise InputError(f"{run.root}: no lesions.json recorded; pass --lesions FOLDER")
        rec = json.loads(record.read_text())
        lesions, max_masks = Path(rec["folder"]), rec.get("max_masks")
    write_text_atomic(record, json.dumps({"folder": str(Path(lesions).resolve()), "max_masks": max_masks}) + "\n")
    real = _cached_real_masks(run, lesions, cfg.grid, progress, max_masks)
    trainer = MaskGANTrainer(cfg, real, device, seed)
    if ckpt is None:
        save_mask_grid(run.root / "samples" / "real.png", real[:8, 0], title="real masks (coarse grid)")

    def sample(it: int) -> None:
        save_mask_grid(run.sample_png(it), trainer.preview_probs(), title=f"mask GAN, iteration {it}")

    return train_gan(run, trainer, ckpt, device, "mask GAN", sample,
                     lambda losses: {"W": f"{losses['wasserstein']:.3g}", "ml": f"{losses['fake_ml']:.0f}"},
                     time_limit_min, progress)


def _cached_real_masks(run: RunFolder, lesions: str | Path, grid: MaskGrid, progress: bool,
                       max_masks: int | None = None) -> torch.Tensor:
    """Real masks on the coarse grid, cached in ``RUN/real_masks.pt`` (keyed by files and grid)."""
    from lesionsynth.lesions import LesionFolder

    folder = LesionFolder(lesions)
    folder.files = folder.files[:max_masks]
    key = {"files": [str(f.resolve()) for f in folder.files], "grid": asdict(grid)}
    cache = run.root / "real_masks.pt"
    if (blob := read_cache(cache, key)) is not None:
        return blob["masks"]
    masks = load_coarse_masks(folder, grid, progress=progress)
    save_checkpoint(cache, {"key": key, "masks": masks})
    return masks


def load_mask_generator(path: str | Path, device: torch.device | str = "cpu"
                        ) -> tuple[MaskGenerator, MaskGANConfig, dict]:
    """The generator (eval mode), its config and the checkpoint dict from a run folder or file."""
    ckpt = read_run_checkpoint(path, KIND)
    cfg = from_dict(MaskGANConfig, ckpt["config"], where=str(path))
    g = MaskGenerator(cfg.grid.shape, cfg.latent_dim, cfg.gen_channels)
    g.load_state_dict(ckpt["model"])
    return g.to(device).eval(), cfg, ckpt
