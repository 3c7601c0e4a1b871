"""Training of both LDM stages: the autoencoder, then the latent diffusion UNet (DDPM objective).

Both stages run on the run engine (:mod:`lesionsynth.runs`): ``RUN/config.yaml``, ``RUN/run.json``,
``RUN/metrics.csv`` (loss terms every ``train.log_every`` steps), ``RUN/checkpoints/last.pt`` (see
models.py for its contents), ``RUN/samples/iter_NNNNNNN.png`` (reconstructions or samples), plus
``RUN/data_cache.pt`` (the training maps on the grid, reused on resume).

Every random draw of step ``it`` (batches, posterior samples, noise, timesteps, condition dropout) comes
from a CPU ``torch.Generator`` seeded with ``case_seed(seed, it)`` (the engine's scheme), so a resumed run
continues exactly as an uninterrupted one would (on the CPU).
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from lesionsynth.config import to_dict
from lesionsynth.devices import resolve_device
from lesionsynth.errors import ConfigError, InputError, LesionsynthError
from lesionsynth.generative import optimiser_step, seeded_build
from lesionsynth.generative.ldm.config import LDMConfig, TrainConfig
from lesionsynth.generative.ldm.data import LabelSet, cached_label_set, one_hot
from lesionsynth.generative.ldm.losses import image_recon_loss, kl_loss, mask_recon_loss
from lesionsynth.generative.ldm.models import (
    ImageLDM,
    MaskLDM,
    checkpoint_config,
    load_autoencoder,
    read_ldm_checkpoint,
    with_weights,
)
from lesionsynth.generative.ldm.nets import build_autoencoder, build_denoiser, ddpm_scheduler
from lesionsynth.generative.ldm.preview import save_grid
from lesionsynth.ops import case_seed, make_generator
from lesionsynth.runs import Intervals, RunFolder, run_iterations, save_run_checkpoint


def run_dir_of(path: str | Path) -> Path:
    """The run folder of a run folder or of a checkpoint file inside ``RUN/checkpoints/``."""
    p = Path(path)
    if p.is_dir():
        return p
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def _open_run(out: str | Path, resume: bool, cfg: LDMConfig | None, stage: str, device: str | torch.device
              ) -> tuple[RunFolder, bool, torch.device, dict | None, LDMConfig | None]:
    """The run folder of one stage, whether to continue its checkpoint (the engine's resume rule), the
    device, and on resume the checkpoint and the config (default: the checkpoint's)."""
    run = RunFolder(out)
    cont = run.resumable(None if cfg is None else to_dict(cfg), resume)
    if resume and not cont:
        raise InputError(f"{run.root}: nothing to resume (no checkpoints/last.pt)")
    dev = resolve_device(device)
    if not resume:
        return run, cont, dev, None, cfg
    ckpt = read_ldm_checkpoint(run.last, stage)
    return run, cont, dev, ckpt, cfg or checkpoint_config(ckpt, run.last)


def _optimiser(model: nn.Module, lr: float, ckpt: dict | None) -> tuple[torch.optim.Adam, int]:
    """Adam over ``model``'s parameters and the first iteration; on resume both (and the model) from ``ckpt``."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    if ckpt is None:
        return opt, 0
    model.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    return opt, int(ckpt["iteration"])


def _train(run: RunFolder, tcfg: TrainConfig, start: int, step, save, preview, desc: str,
           progress: bool | None) -> None:
    every = Intervals(tcfg.log_every, tcfg.sample_every, tcfg.checkpoint_every)
    run_iterations(run, start, tcfg.iterations, every, step, save, preview, desc, progress=progress)


def _with_iterations(cfg: LDMConfig, stage: str, iterations: int | None) -> LDMConfig:
    if iterations is None:
        return cfg
    if iterations < 1:
        raise ConfigError(f"iterations must be >= 1, got {iterations}")
    part = getattr(cfg, stage)
    return replace(cfg, **{stage: replace(part, train=replace(part.train, iterations=iterations))})


# ----------------------------------------------------------------------------------------------------
# stage 1: autoencoder
# ----------------------------------------------------------------------------------------------------


def train_autoencoder(cfg: LDMConfig | None, out: str | Path, device: str | torch.device = "auto",
                      resume: bool = False, iterations: int | None = None,
                      progress: bool | None = None) -> dict[str, float]:
    """Train (or resume) the first stage; returns reconstruction metrics on the training set.

    Args:
        cfg: the LDM config; when resuming, None (the run's own) or one that differs from the recorded
            config only in runtime keys and ``iterations``.
        out: run folder.
        device: torch device spec.
        resume: continue ``out/checkpoints/last.pt``.
        iterations: override the total number of steps (e.g. to extend a resumed run).
        progress: force the progress bar on/off (None: only on a terminal).
    """
    run, cont, dev, ckpt, cfg = _open_run(out, resume, cfg, "autoencoder", device)
    if cfg is None:
        raise ConfigError("train-autoencoder: no config given")
    cfg = _with_iterations(cfg, "autoencoder", iterations)
    created = not run.root.exists()
    run.start(to_dict(cfg), cont, {"device": str(dev)})
    try:
        data, _ = cached_label_set(cfg, [run.root])
    except LesionsynthError:
        if created:  # bad data: leave nothing behind, so the corrected command starts clean
            shutil.rmtree(run.root, ignore_errors=True)
        raise
    K, acfg = data.schema.num_classes, cfg.autoencoder
    ae = seeded_build(cfg.seed, lambda: build_autoencoder(acfg, K, cfg.kind)).to(dev)
    opt, start = _optimiser(ae, acfg.train.lr, ckpt)
    N, B = len(data), acfg.train.batch_size

    def step(it: int) -> dict[str, float]:
        gen = make_generator(case_seed(cfg.seed, it))
        ae.train()
        idx = torch.randint(0, N, (B,), generator=gen)
        lab = data.labels[idx].long().to(dev)
        x = one_hot(lab, K) if cfg.kind == "mask" else data.images[idx][:, None].to(dev)  # type: ignore[index]
        mu, sigma = ae.encode(x)
        z = mu + sigma * torch.randn(mu.shape, generator=gen).to(dev)
        rec, parts = (mask_recon_loss(ae.decode(z), lab, acfg.dice_weight) if cfg.kind == "mask"
                      else image_recon_loss(ae.decode(z, one_hot(lab, K)), x))
        kl = kl_loss(mu, sigma)
        loss = rec + acfg.kl_weight * kl
        optimiser_step(opt, loss)
        return {"loss": loss.item(), **parts, "kl": kl.item()}

    def checkpoint(it: int) -> None:
        save_run_checkpoint(run.last, "ldm-autoencoder", {
            "stage": "autoencoder", "kind": cfg.kind, "model": ae.state_dict(), "config": to_dict(cfg),
            "schema": data.schema.to_dict(), "grid_affine": data.affine.tolist(), "condition": None,
            "optimizer": opt.state_dict(), "iteration": it})

    _train(run, acfg.train, start, step, checkpoint,
           lambda it: _autoencoder_preview(ae, data, cfg, dev, run.sample_png(it)), "autoencoder", progress)
    return evaluate_autoencoder(ae, data, cfg, dev)


@torch.no_grad()
def _reconstruct(ae: nn.Module, data: LabelSet, cfg: LDMConfig, idx: torch.Tensor, dev: torch.device
                 ) -> torch.Tensor:
    ae.eval()
    K = data.schema.num_classes
    lab = data.labels[idx].long().to(dev)
    if cfg.kind == "mask":
        return ae.reconstruct(one_hot(lab, K)).argmax(1).cpu()
    return ae.reconstruct(data.images[idx][:, None].to(dev), one_hot(lab, K))[:, 0].cpu()  # type: ignore[index]


def _autoencoder_preview(ae: nn.Module, data: LabelSet, cfg: LDMConfig, dev: torch.device,
                         path: Path) -> None:
    idx = torch.as_tensor(np.unique(np.linspace(0, len(data) - 1, 4).round().astype(int)))
    rec = _reconstruct(ae, data, cfg, idx, dev)
    focus = data.schema.index(cfg.data.condition_label) if cfg.data.condition_label in data.schema.classes \
        else None
    labels, images, titles = [], [], []
    for j, i in enumerate(idx.tolist()):
        if cfg.kind == "mask":
            labels += [data.labels[i].numpy(), rec[j].numpy()]
        else:
            labels += [data.labels[i].numpy()] * 2
            images += [data.images[i].numpy(), rec[j].numpy()]  # type: ignore[index]
        titles += [f"{data.names[i][:14]}", "reconstruction"]
    save_grid(path, labels, images or None, titles, focus=focus, suptitle=path.stem)


@torch.no_grad()
def evaluate_autoencoder(ae: nn.Module, data: LabelSet, cfg: LDMConfig, dev: torch.device,
                         batch_size: int = 4) -> dict[str, float]:
    """Reconstruction quality on the training set.

    Mask LDM: mean Dice of each foreground class, and the Pearson correlation between the condition
    class's volume in the inputs and in the reconstructions. Image LDM: mean absolute error.
    """
    recs = torch.cat([_reconstruct(ae, data, cfg, torch.arange(i, min(i + batch_size, len(data))), dev)
                      for i in range(0, len(data), batch_size)])
    if cfg.kind == "image":
        return {"l1": float((recs - data.images).abs().mean())}  # type: ignore[operator]
    out: dict[str, float] = {}
    lab = data.labels.long()
    for k in range(1, data.schema.num_classes):
        a, b = lab == k, recs == k
        inter = (a & b).flatten(1).sum(1).double()
        den = (a.flatten(1).sum(1) + b.flatten(1).sum(1)).double()
        present = den > 0
        if present.any():
            out[f"dice_{data.schema.classes[k]}"] = float((2 * inter[present] / den[present]).mean())
    if cfg.data.condition_label in data.schema.classes:
        k = data.schema.index(cfg.data.condition_label)
        va = (lab == k).flatten(1).sum(1).double()
        vb = (recs == k).flatten(1).sum(1).double()
        if va.std() > 0 and vb.std() > 0:
            out["volume_corr"] = float(np.corrcoef(va.numpy(), vb.numpy())[0, 1])
        out["volume_ratio_recon_over_input"] = float(vb.sum() / va.sum().clamp_min(1))
    return out


# ----------------------------------------------------------------------------------------------------
# stage 2: latent diffusion
# ----------------------------------------------------------------------------------------------------


@torch.no_grad()
def encode_set(ae: nn.Module, data: LabelSet, kind: str, dev: torch.device, batch_size: int = 4
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and sigma of every training map (CPU tensors)."""
    ae.eval()
    K = data.schema.num_classes
    mus, sigmas = [], []
    for i in range(0, len(data), batch_size):
        sl = slice(i, i + batch_size)
        x = one_hot(data.labels[sl].long(), K) if kind == "mask" else data.images[sl][:, None]  # type: ignore[index]
        mu, sigma = ae.encode(x.to(dev))
        mus.append(mu.cpu())
        sigmas.append(sigma.cpu())
    return torch.cat(mus), torch.cat(sigmas)


def _check_same_model(cfg: LDMConfig, ae_cfg: LDMConfig, ae_path: str | Path) -> None:
    """The diffusion config must describe the autoencoder's data and network (its training may differ)."""
    for name in ("kind", "grid", "data", "autoencoder"):
        a, b = to_dict(getattr(cfg, name)), to_dict(getattr(ae_cfg, name))
        if name == "autoencoder":
            a, b = ({k: v for k, v in d.items() if k != "train"} for d in (a, b))
        if a != b:
            raise ConfigError(f"--config: section '{name}' differs from the autoencoder run {ae_path}; "
                              "use the same config for both stages")


def train_diffusion(cfg: LDMConfig | None, autoencoder: str | Path | None, out: str | Path,
                    device: str | torch.device = "auto", resume: bool = False, iterations: int | None = None,
                    progress: bool | None = None) -> dict[str, float]:
    """Train (or resume) the latent diffusion UNet on a trained autoencoder's latents.

    Args:
        cfg: the LDM config (default: the autoencoder run's; when resuming, None or one that differs from
            the recorded config only in runtime keys and ``iterations``).
        autoencoder: ``train-autoencoder`` run folder or checkpoint (not needed when resuming).
        out: run folder.
        device: torch device spec.
        resume: continue ``out/checkpoints/last.pt``.
        iterations: override the total number of steps.
        progress: force the progress bar on/off.

    Returns:
        ``scale_factor`` and the final loss.
    """
    run, cont, dev, ckpt, cfg = _open_run(out, resume, cfg, "diffusion", device)
    if ckpt is not None:
        autoencoder = ckpt.get("autoencoder_path")
        ae = with_weights(build_autoencoder(cfg.autoencoder, len(ckpt["schema"]["classes"]), cfg.kind),
                          ckpt["autoencoder"], dev)
    else:
        if autoencoder is None:
            raise ConfigError("train-diffusion: give the autoencoder run (--autoencoder)")
        ae, ae_cfg, _ = load_autoencoder(autoencoder, dev)
        cfg = cfg or ae_cfg
        _check_same_model(cfg, ae_cfg, autoencoder)
    assert cfg is not None
    cfg = _with_iterations(cfg, "diffusion", iterations)
    run.start(to_dict(cfg), cont, {"device": str(dev)})
    caches = [run.root] + ([run_dir_of(autoencoder)] if autoencoder else [])
    data, _ = cached_label_set(cfg, caches)
    K, dcfg = data.schema.num_classes, cfg.diffusion
    mu, sigma = encode_set(ae, data, cfg.kind, dev)
    if ckpt is not None:
        scale = float(ckpt["scale_factor"])
    else:
        z = mu + sigma * torch.randn(mu.shape, generator=make_generator(case_seed(cfg.seed + 1, 0)))
        scale = float(1.0 / z.std().clamp_min(1e-8))
    condition = cond_all = None
    if cfg.kind == "mask":
        condition = data.condition(cfg.data.condition_label, cfg.grid.spacing)
        cond_all = condition.normalise(condition.measure(data.labels)).float()  # type: ignore[union-attr]
    lc = cfg.autoencoder.latent_channels
    den = seeded_build(cfg.seed + 1, lambda: build_denoiser(dcfg, lc, K, cfg.kind)).to(dev)
    opt, start = _optimiser(den, dcfg.train.lr, ckpt)
    ddpm = ddpm_scheduler(dcfg)
    N, B = len(data), dcfg.train.batch_size
    last_loss = [float("nan")]

    def step(it: int) -> dict[str, float]:
        gen = make_generator(case_seed(cfg.seed + 1, it))
        den.train()
        idx = torch.randint(0, N, (B,), generator=gen)
        z = (mu[idx] + sigma[idx] * torch.randn(mu[idx].shape, generator=gen)) * scale
        noise = torch.randn(z.shape, generator=gen)
        t = torch.randint(0, dcfg.num_train_timesteps, (B,), generator=gen)
        null = torch.rand(B, generator=gen) < dcfg.condition_dropout
        zt = ddpm.add_noise(z, noise, t)
        cond = cond_all[idx] if cfg.kind == "mask" else one_hot(data.labels[idx].long(), K)  # type: ignore[index]
        pred = den(zt.to(dev), t.to(dev), cond.to(dev), null.to(dev))
        loss = F.mse_loss(pred.float(), noise.to(dev))
        optimiser_step(opt, loss)
        last_loss[0] = loss.item()
        return {"loss": last_loss[0]}

    def checkpoint(it: int) -> None:
        save_run_checkpoint(run.last, "ldm-diffusion", {
            "stage": "diffusion", "kind": cfg.kind, "model": den.state_dict(), "config": to_dict(cfg),
            "schema": data.schema.to_dict(), "grid_affine": data.affine.tolist(),
            "condition": None if condition is None else asdict(condition), "autoencoder": ae.state_dict(),
            "autoencoder_path": None if autoencoder is None else str(autoencoder),
            "scale_factor": scale, "optimizer": opt.state_dict(), "iteration": it})

    def preview(it: int) -> None:
        common = dict(cfg=cfg, autoencoder=ae, denoiser=den.eval(), schema=data.schema, scale_factor=scale,
                      affine=data.affine, device=dev)
        path = run.sample_png(it)
        steps = min(cfg.sampling.steps, 25)
        if cfg.kind == "mask":
            assert condition is not None
            cs = [0.0, 0.25, 0.5, 0.75, 1.0]
            maps = MaskLDM(**common, condition=condition).sample(cs, list(range(len(cs))), steps=steps)
            vols = condition.volume_ml(maps)
            titles = [f"c={c:.2f}: {v:.1f} ml" for c, v in zip(cs, vols.tolist(), strict=True)]
            save_grid(path, maps.numpy(), None, titles, focus=condition.index,
                      suptitle=f"{path.stem}, G={cfg.sampling.guidance:g}")
        else:
            idx = list(range(min(4, N)))
            imgs = ImageLDM(**common).render(data.labels[idx].long(), idx, steps=steps)
            save_grid(path, data.labels[idx].numpy(), imgs.numpy(), [data.names[i][:14] for i in idx],
                      suptitle=f"{path.stem}, G={cfg.sampling.guidance:g}")

    _train(run, dcfg.train, start, step, checkpoint, preview, "diffusion", progress)
    return {"scale_factor": scale, "loss": last_loss[0]}
