"""Label map -> image translators: pix2pix and SPADE, their training and rendering.

- **pix2pix** (Isola et al. 2017): UNet generator, PatchGAN discriminator conditioned on the labels,
  least-squares adversarial loss + ``l1_weight`` (100) x L1 to the real image.
- **SPADE** (Park et al. 2019): ``SPADENet`` decoder (labels modulate every normalisation),
  multi-scale patch discriminator, hinge loss + ``fm_weight`` (10) x discriminator feature matching
  (+ optional L1). The original's VGG perceptual loss needs downloaded weights and is left out.

Each training iteration does one generator step then one discriminator step on a fresh batch of
random pairs (:class:`~lesionsynth.generative.gan.pairs.PairSampler`) drawn from a generator seeded
with ``case_seed(seed, iteration)``. Images live in [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn as nn

from lesionsynth.config import from_dict
from lesionsynth.errors import ConfigError
from lesionsynth.generative import optimiser_step, seeded_build
from lesionsynth.generative.gan.losses import adversarial_loss, feature_matching
from lesionsynth.generative.gan.nets import ConditionalDiscriminator, Pix2PixGenerator, SpadeGenerator
from lesionsynth.generative.gan.pairs import PairConfig, PairSampler, one_hot
from lesionsynth.generative.gan.preview import save_pair_grid
from lesionsynth.generative.gan.trainer import GANTrainer, resume_state, train_gan
from lesionsynth.labels import LabelSchema, load_schema
from lesionsynth.ops import case_seed, make_generator
from lesionsynth.runs import RunFolder, read_run_checkpoint

KIND = "translator"


@dataclass
class TranslatorConfig:
    """Translator settings (``configs/gan-pix2pix.yaml``, ``configs/gan-spade.yaml``).

    Attributes:
        arch: ``pix2pix`` or ``spade``.
        spatial_dims: 2 (axial slices) or 3 (volumes).
        spacing_mm: voxel size of the pairs and of rendered images.
        shape: 3D crop (X, Y, Z) around the brain centre; 2D uses its (X, Y) slices. Sizes must be
            divisible by 2**(len(channels) - 1) (pix2pix) or 2**len(channels) (SPADE).
        schema: label schema (name or YAML path); the one-hot input has one channel per class.
        contrast: name of the image contrast (written as the channel name of built datasets).
        channels: generator channels (pix2pix: UNet levels; SPADE: decoder levels, coarsest last).
        num_res_units: pix2pix UNet residual units per level.
        spade_hidden: SPADE modulation hidden channels.
        disc_channels: discriminator first-layer channels.
        disc_layers: discriminator strided layers.
        num_d: number of discriminators (SPADE's multi-scale discriminator; 1 = single PatchGAN).
        adversarial: ``least_squares`` or ``hinge``.
        l1_weight: weight of the L1 loss to the real image.
        fm_weight: weight of the discriminator feature-matching loss.
        batch_size: pairs per iteration.
        lr_g: generator learning rate (Adam).
        lr_d: discriminator learning rate (Adam).
        betas: Adam betas.
        iterations: training iterations.
        log_every: iterations between log rows.
        sample_every: iterations between PNG sample grids.
        checkpoint_every: iterations between checkpoints.
        pairs: where the training pairs come from.
    """

    arch: str = "pix2pix"
    spatial_dims: int = 3
    spacing_mm: float = 3.0
    shape: tuple[int, int, int] = (64, 72, 64)
    schema: str = "tissue"
    contrast: str = "T1"
    channels: tuple[int, ...] = (16, 32, 64, 128)
    num_res_units: int = 0
    spade_hidden: int = 32
    disc_channels: int = 32
    disc_layers: int = 3
    num_d: int = 1
    adversarial: str = "least_squares"
    l1_weight: float = 100.0
    fm_weight: float = 0.0
    batch_size: int = 4
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    iterations: int = 2000
    log_every: int = 10
    sample_every: int = 100
    checkpoint_every: int = 50
    pairs: PairConfig = field(default_factory=PairConfig)

    def __post_init__(self) -> None:
        if self.arch not in ("pix2pix", "spade"):
            raise ValueError(f"arch must be pix2pix or spade, got '{self.arch}'")
        if self.spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {self.spatial_dims}")
        if self.adversarial not in ("least_squares", "hinge"):
            raise ValueError(f"adversarial must be least_squares or hinge, got '{self.adversarial}'")
        div = 2 ** (len(self.channels) - 1) if self.arch == "pix2pix" else 2 ** len(self.channels)
        dims = self.shape[: self.spatial_dims]
        if any(s % div for s in dims):
            raise ValueError(f"shape {tuple(self.shape)}: sizes {tuple(dims)} must be divisible by {div} "
                             f"for {self.arch} with {len(self.channels)} levels")
        depth = self.disc_layers * self.num_d  # stride-2 layers of the deepest discriminator
        if min(dims) / 2 ** depth < 3:
            raise ValueError(f"shape {tuple(dims)} is too small for {self.num_d} discriminator(s) with "
                             f"disc_layers={self.disc_layers} (the deepest halves it {depth} times)")
        for name in ("batch_size", "iterations", "log_every", "sample_every", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.shape[: self.spatial_dims])


def build_generator(cfg: TranslatorConfig, num_classes: int) -> nn.Module:
    if cfg.arch == "pix2pix":
        return Pix2PixGenerator(cfg.spatial_dims, num_classes, cfg.channels, cfg.num_res_units)
    return SpadeGenerator(cfg.spatial_dims, num_classes, cfg.image_shape, cfg.channels,
                          spade_hidden=cfg.spade_hidden)


def build_translator(cfg: TranslatorConfig, schema: LabelSchema,
                     seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Generator and discriminator, reproducibly initialised from ``seed``."""
    k = schema.num_classes
    g = seeded_build(seed, lambda: build_generator(cfg, k))
    try:
        d = seeded_build(seed + 1, lambda: ConditionalDiscriminator(
            cfg.spatial_dims, k, cfg.disc_channels, cfg.disc_layers, cfg.num_d, min(cfg.image_shape)))
    except AssertionError as e:
        raise ConfigError(f"discriminator: {str(e).splitlines()[0]}") from None
    return g, d


class TranslatorTrainer(GANTrainer):
    """Nets, optimisers and pair sampler of one run; :meth:`step` does one iteration."""

    kind = KIND

    def __init__(self, cfg: TranslatorConfig, device: torch.device, seed: int = 0,
                 sampler: PairSampler | None = None):
        self.cfg, self.device, self.seed = cfg, device, int(seed)
        self.schema = load_schema(cfg.schema)
        self.sampler = sampler or PairSampler(cfg.pairs, self.schema, cfg.spacing_mm, cfg.shape,
                                              cfg.spatial_dims)
        self.G, self.D = build_translator(cfg, self.schema, seed)
        self._optimisers(device)
        self.adv = adversarial_loss(cfg.adversarial)

    def step(self) -> dict[str, float]:
        cfg = self.cfg
        gen = make_generator(case_seed(self.seed, self.iteration))
        labels, real = self.sampler.batch(gen, cfg.batch_size)
        onehot = one_hot(labels, self.schema.num_classes).to(self.device)
        real = real.to(self.device)
        self.G.train()
        self.D.train()
        # generator step
        fake = self.G(onehot)
        out_fake, feats_fake = self.D(onehot, fake)
        loss_adv = self.adv(out_fake, target_is_real=True, for_discriminator=False)
        l1 = (fake - real).abs().mean()
        loss_g = loss_adv + cfg.l1_weight * l1
        fm = torch.zeros((), device=self.device)
        if cfg.fm_weight > 0:
            with torch.no_grad():
                _, feats_real = self.D(onehot, real)
            fm = feature_matching(feats_fake, feats_real)
            loss_g = loss_g + cfg.fm_weight * fm
        optimiser_step(self.opt_g, loss_g)
        # discriminator step
        out_real, _ = self.D(onehot, real)
        out_fake, _ = self.D(onehot, fake.detach())
        loss_d = 0.5 * (self.adv(out_real, target_is_real=True, for_discriminator=True)
                        + self.adv(out_fake, target_is_real=False, for_discriminator=True))
        optimiser_step(self.opt_d, loss_d)
        self.iteration += 1
        vals = [float(t.detach()) for t in (loss_g, loss_adv, l1, fm, loss_d)]
        return dict(zip(["loss_g", "adv_g", "l1", "fm", "loss_d"], vals, strict=True))

    def state(self) -> dict:
        return {**super().state(), "schema": self.schema.to_dict()}

    def preview_pairs(self, n: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` fixed pairs (the same in every sample grid): labels and real images."""
        if not hasattr(self, "_preview"):
            gen = make_generator(case_seed(self.seed + 7919, 0))
            self._preview = self.sampler.batch(gen, n)
        return self._preview

    @torch.no_grad()
    def render(self, labels: torch.Tensor) -> torch.Tensor:
        self.G.eval()
        out = self.G(one_hot(labels, self.schema.num_classes).to(self.device)).cpu()
        self.G.train()
        return out


def train_translator(cfg: TranslatorConfig, out: str | Path, device: torch.device, seed: int = 0,
                     resume: bool = False, progress: bool = True, time_limit_min: float | None = None) -> Path:
    """Train (or resume) a translator; returns the checkpoint path (see :func:`.trainer.train_gan`)."""
    run = RunFolder(out)
    ckpt, seed = resume_state(run, KIND, cfg, seed, resume)
    trainer = TranslatorTrainer(cfg, device, seed)
    li = trainer.schema.lesion_index

    def sample(it: int) -> None:
        labels, real = trainer.preview_pairs()
        fake = trainer.render(labels)
        save_pair_grid(run.sample_png(it), list(labels), list(real[:, 0]), list(fake[:, 0]), li,
                       title=f"{cfg.arch}, iteration {it}", num_classes=trainer.schema.num_classes)

    return train_gan(run, trainer, ckpt, device, f"{cfg.arch} translator", sample,
                     lambda losses: {"l1": f"{losses['l1']:.3f}", "d": f"{losses['loss_d']:.3f}"},
                     time_limit_min, progress)


def load_translator(path: str | Path, device: torch.device | str = "cpu"
                    ) -> tuple[nn.Module, TranslatorConfig, LabelSchema, dict]:
    """Generator (eval mode), config, schema and checkpoint dict from a run folder or file."""
    ckpt = read_run_checkpoint(path, KIND)
    cfg = from_dict(TranslatorConfig, ckpt["config"], where=str(path))
    schema = LabelSchema.from_dict(ckpt["schema"])
    g = build_generator(cfg, schema.num_classes)
    g.load_state_dict(ckpt["model"])
    return g.to(device).eval(), cfg, schema, ckpt


@torch.no_grad()
def render_volume(G: nn.Module, labels: torch.Tensor, num_classes: int, spatial_dims: int,
                  device: torch.device | str = "cpu", slice_batch: int = 16) -> torch.Tensor:
    """Render a 3D label map (X, Y, Z) into an image (X, Y, Z) in [-1, 1].

    3D translators see the whole volume; 2D translators render each axial slice.
    """
    G.eval()
    if spatial_dims == 3:
        return G(one_hot(labels[None], num_classes).to(device))[0, 0].cpu()
    slices = labels.permute(2, 0, 1)  # (Z, X, Y)
    out = [G(one_hot(slices[i:i + slice_batch], num_classes).to(device))[:, 0].cpu()
           for i in range(0, slices.shape[0], slice_batch)]
    return torch.cat(out).permute(1, 2, 0)
