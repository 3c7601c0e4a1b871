"""The segmenter's trainer: one function that wires the pieces together and steps through iterations with
the run engine's loop (:func:`lesionsynth.runs.run_iterations`, shared with the GANs and the LDM).

Per iteration ``i``: seed dropout from (seed, i, rank); take the batch of ``i``; forward under autocast
(CUDA); Dice + CE; backward (scaled for fp16); clip the gradient norm; AdamW step; poly schedule step.
At the end of every epoch (and every ``checkpoint_every`` iterations) ``last.pt`` is written; every
``val.every_epochs`` epochs the model is validated (through ``predict``'s own code) and, when validating
on a held-out folder (``val.path``), ``best.pt`` written when the lesion Dice improves (``best`` before
``last``, so a kill between the two loses nothing). Held-out *synthetic* cases come from the training
generator: their Dice is logged but never selects a checkpoint, so every arm of an experiment follows
one rule: ``best.pt`` from a held-out folder when one is given, else ``last.pt``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lesionsynth.config import to_dict
from lesionsynth.devices import autocast, autocast_dtype, resolve_device
from lesionsynth.errors import ConfigError
from lesionsynth.labels.schema import LabelSchema, load_schema
from lesionsynth.models import build_unet, init_weights
from lesionsynth.runs.checkpoint import checkpoint_iteration, read_run_checkpoint
from lesionsynth.runs.folder import RunFolder
from lesionsynth.runs.log import SEGMENTER_COLUMNS, MetricsLog
from lesionsynth.runs.loop import Intervals, run_iterations
from lesionsynth.train import ddp
from lesionsynth.train.budget import fit_to_budget
from lesionsynth.train.config import TrainConfig
from lesionsynth.train.data import ValCase, load_val_folder
from lesionsynth.train.losses import MaskedDiceCELoss
from lesionsynth.train.optim import build_optimizer, build_scaler, set_schedule_length
from lesionsynth.train.sources import Batch, TrainingSources, schema_lut
from lesionsynth.train.state import (
    Progress,
    load_training_checkpoint,
    save_best_checkpoint,
    save_training_checkpoint,
    seed_iteration,
)
from lesionsynth.train.validate import evaluate, synthetic_val_cases

_log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns."""

    run_dir: Path
    iterations: int
    last_loss: float
    best_dice: float
    last_checkpoint: Path
    model: torch.nn.Module
    iterations_run: int = 0  # iterations trained by this call (0: a resumed run that had already finished)
    planned_iterations: int = 0  # the iteration the run ends at (its epochs, or fewer under a time budget)
    config_iterations: int = 0  # the config's full length (epochs x iterations per epoch)


def train_step(model: torch.nn.Module, batch: Batch, loss_fn: MaskedDiceCELoss, optimizer: torch.optim.Optimizer,
               scheduler: Any, scaler: torch.amp.GradScaler, dtype: torch.dtype | None, clip: float
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step; returns the (detached) loss and gradient norm without synchronising."""
    with autocast(batch.image.device, dtype):
        logits = model(batch.image)
    loss = loss_fn(logits, batch.target, batch.labelled)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    gn = torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    scaler.step(optimizer)
    scaler.update()
    scheduler.step()
    return loss.detach(), gn.detach()


def _configure_torch(cfg: TrainConfig, device: torch.device) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    if cfg.deterministic:
        if device.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _val_cases(cfg: TrainConfig, schema: LabelSchema, sources: TrainingSources
               ) -> tuple[list[ValCase], torch.Tensor | None]:
    if cfg.val.path is not None:
        rename = next((s.label_names for s in cfg.training_sources() if not s.generated), None)
        return load_val_folder(cfg.val.path, cfg.val.split, schema, cfg.preprocessing.spacing, rename,
                               cfg.val.max_cases), None
    if cfg.val.synthetic_cases and sources.synth is not None:
        lut = torch.tensor(schema_lut(load_schema(sources.synth.cfg.schema), schema), dtype=torch.long)
        return synthetic_val_cases(sources.synth, cfg.val.synthetic_cases, cfg.seed), lut
    return [], None


def train(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, stop_after: int | None = None,
          progress_bar: bool | None = None, generator=None, time_limit_min: float | None = None) -> TrainResult:
    """Train (or resume training) into ``run_dir``.

    Args:
        cfg: a checked config (:func:`lesionsynth.train.config.load_train_config`).
        run_dir: the run folder.
        resume: continue from ``checkpoints/last.pt`` (start from scratch if there is none yet).
        stop_after: stop (with a checkpoint) once this many iterations are done in total; for tests
            and time-boxed jobs. The schedule still spans the full run.
        progress_bar: show a tqdm bar (None: only on a terminal).
        generator: a pre-built synthetic generator (default: built from ``cfg.synth``).
        time_limit_min: stop (with a checkpoint) after the iteration that crosses this many minutes of
            training; ``resume`` continues. For time-boxed jobs (a batch queue's or a lent GPU's limit).

    Returns:
        Summary of the run.
    """
    run_dir = Path(run_dir)
    info = ddp.env_info()
    device = resolve_device(cfg.device, info.local_rank)  # under torchrun, cuda means GPU LOCAL_RANK
    _configure_torch(cfg, device)
    ddp.init(info, device)
    try:
        return _train(cfg, run_dir, resume, stop_after, progress_bar, generator, info, device, time_limit_min)
    finally:
        ddp.cleanup(info)


def _train(cfg: TrainConfig, run_dir: Path, resume: bool, stop_after: int | None, progress_bar: bool | None,
           generator, info: ddp.DistInfo, device: torch.device, time_limit_min: float | None) -> TrainResult:
    schema = cfg.label_schema()
    cfg_dict = to_dict(cfg)  # what the run folder's config.yaml holds
    run = RunFolder(run_dir)
    ckpt = None
    if run.resumable(cfg_dict, resume):  # every rank, before anything is written
        ckpt = read_run_checkpoint(run.last, "segmenter", device)
        done = checkpoint_iteration(ckpt)
        if done > cfg.total_iterations:
            raise ConfigError(f"{run_dir}: epochs {cfg.epochs} ends at iteration {cfg.total_iterations}, but the "
                              f"run is already at iteration {done}; give more epochs")
    ddp.barrier(info)
    if info.is_main:
        run.start(cfg_dict, resume, {"world_size": info.world, "device": str(device)})
    ddp.barrier(info)

    torch.manual_seed(cfg.weights_seed)  # identical initial weights on every rank
    model = build_unet(cfg.model).to(device)
    optimizer, scheduler = build_optimizer(model, cfg.optim, cfg.total_iterations)
    dtype = autocast_dtype(cfg.amp, device)
    scaler = build_scaler(dtype, device)
    progress = Progress()
    if cfg.init_from and ckpt is None:
        init_weights(model, cfg.model, schema, cfg.init_from)
    resumed = ckpt is not None
    seconds_before = 0.0  # training wall time of earlier sessions of this run
    if ckpt is not None:
        progress = load_training_checkpoint(ckpt, run.last, model, optimizer, scheduler, scaler)
        seconds_before = float(ckpt.get("train_seconds", 0.0))
        del ckpt
    # a run a time budget shortened keeps that length on resume (unless the budget was removed)
    total = cfg.total_iterations
    if cfg.time_budget_min is not None and progress.planned_iterations:
        total = max(min(total, progress.planned_iterations), progress.iteration)
    if resumed:
        set_schedule_length(optimizer, scheduler, total)
    net = model
    model = ddp.wrap(model, info, device)

    end = total if stop_after is None else min(total, stop_after)
    loss_fn = MaskedDiceCELoss(schema.background_index, **vars(cfg.loss))  # LossConfig's fields are its arguments
    sources = TrainingSources(cfg, schema, device, info.rank, info.world, progress.iteration, generator)
    val_cases, val_lut = _val_cases(cfg, schema, sources)
    names = [str(s.name) for s in sources.specs] if len(sources.specs) > 1 else []
    logger = MetricsLog(run_dir, progress.iteration, SEGMENTER_COLUMNS + [f"loss_{n}" for n in names],
                        enabled=info.is_main, tensorboard=True)
    prep = cfg.preprocessing.record(cfg.crop_size)

    clock = [seconds_before, seconds_before, time.perf_counter()]  # [run's seconds, before this session, start]

    def save_last(it: int) -> None:
        if info.is_main:
            save_training_checkpoint(run.last, net, cfg.model, schema, prep, optimizer, scheduler, scaler,
                                     progress, cfg_dict, seconds=clock[0])
        ddp.barrier(info)

    clip = cfg.optim.grad_clip if cfg.optim.grad_clip is not None else math.inf

    def step(it: int) -> dict[str, Any]:
        i = it - 1
        seed_iteration(cfg.seed, i, info.rank, info.world)
        batch = sources.batch(i)
        loss, gn = train_step(model, batch, loss_fn, optimizer, scheduler, scaler, dtype, clip)
        progress.iteration = it
        clock[0] = clock[1] + time.perf_counter() - clock[2]
        return {"loss": loss, "grad_norm": gn, "source": batch.source}

    def fit_budget(it: int) -> None:
        """At an epoch's end, shorten the run to the whole epochs that still fit its time budget."""
        nonlocal total, end
        if cfg.time_budget_min is None or it % cfg.iterations_per_epoch or it >= total:
            return
        # the mean over processes, so that every rank takes the same decision
        seconds = ddp.all_reduce_sum([clock[0]], info, device)[0] / info.world
        fitted = fit_to_budget(it, total, seconds, 60.0 * cfg.time_budget_min, cfg.iterations_per_epoch)
        if fitted < total:
            total, progress.planned_iterations = fitted, fitted
            end = min(end, total)
            set_schedule_length(optimizer, scheduler, total)
            if info.is_main:
                _log.info(f"time budget {cfg.time_budget_min:g} min: {seconds / it:.3f} s/iteration, the run now "
                          f"ends at iteration {total} (of {cfg.total_iterations}); schedule re-fitted")

    last_loss = float("nan")
    t_window = time.perf_counter()

    def summarise(window: list[dict[str, Any]]) -> dict[str, Any]:
        nonlocal last_loss, t_window
        dt, t_window = time.perf_counter() - t_window, time.perf_counter()
        losses = torch.stack([w["loss"] for w in window]).float()
        last_loss = float(losses[-1])
        per_source = {f"loss_{n}": float(losses[[k for k, w in enumerate(window) if w["source"] == n]].mean())
                      for n in names if any(w["source"] == n for w in window)
                      and f"loss_{n}" in (logger.columns or [])}  # a run resumed from before keeps its columns
        return {"phase": "train", "epoch": (progress.iteration - 1) // cfg.iterations_per_epoch + 1,
                "loss": float(losses.mean()), "lr": scheduler.get_last_lr()[0],
                "grad_norm": float(torch.stack([w["grad_norm"] for w in window]).float().mean()),
                "iter_per_s": len(window) / dt if dt > 0 else float("nan"), **per_source}

    def validate(it: int) -> bool:
        """Validation when due (``best.pt`` before ``last.pt``); True at the end of an epoch (a checkpoint)."""
        epoch_done = it % cfg.iterations_per_epoch == 0
        epoch = it // cfg.iterations_per_epoch  # completed epochs
        if epoch_done and val_cases and (epoch % cfg.val.every_epochs == 0 or it == total):
            metrics = evaluate(net, val_cases, tuple(cfg.crop_size), schema.lesion_index, device, info,
                               cfg.val.overlap, cfg.val.sw_batch_size, cfg.amp, val_lut, prep, schema)
            logger.log(it, "val", epoch=epoch, lesion_dice=metrics["lesion_dice"], cases=metrics["cases"])
            if info.is_main:
                _log.info(f"epoch {epoch}: validation lesion Dice {metrics['lesion_dice']:.4f} "
                          f"({metrics['cases']} cases)")
            if cfg.val.path is not None and metrics["lesion_dice"] > progress.best_dice:
                progress.best_dice, progress.best_iteration = float(metrics["lesion_dice"]), it
                if info.is_main:
                    save_best_checkpoint(run.best, net, cfg.model, schema, prep, progress, metrics, cfg_dict)
        return epoch_done

    def after(it: int) -> bool:
        """After each iteration: the budget fit, then validation (its answer asks for a checkpoint)."""
        fit_budget(it)
        return validate(it)

    first = progress.iteration
    model.train()
    try:
        if progress.iteration < end:
            run_iterations(run, progress.iteration, end, Intervals(cfg.log_every, 0, cfg.checkpoint_every), step,
                           save_last, lambda it: None, "train",
                           lambda row: {"loss": f"{row['loss']:.4f}", "lr": f"{row['lr']:.2e}"},
                           time_limit_min, info.is_main and progress_bar, log=logger, summarise=summarise,
                           after=after, agree=lambda flag: ddp.any_rank(flag, info, device),
                           end=lambda: end)
    finally:
        logger.close()
        sources.close()
    return TrainResult(run_dir, progress.iteration, last_loss, progress.best_dice, run.last, net,
                       progress.iteration - first, total, cfg.total_iterations)
