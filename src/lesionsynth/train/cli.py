"""``lesionsynth train``: train a segmenter from a YAML config into a run folder.

Examples::

    lesionsynth train --config tiny-cpu --out runs/tiny
    lesionsynth train --config synth.yaml --out runs/synth --set real.path=/data/ATLAS
    lesionsynth train --out runs/synth --resume
    torchrun --nproc_per_node 4 -m lesionsynth train --config synth --out runs/synth
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lesionsynth import argtypes
from lesionsynth.config import deep_update, parse_set
from lesionsynth.errors import ConfigError
from lesionsynth.runs.folder import recorded_config
from lesionsynth.train.config import TrainConfig, config_from_dict, load_train_config


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a lesion segmenter (synthetic and/or real data)",
        description="Train a MONAI UNet on on-the-fly synthetic data and/or an nnU-Net-style folder of "
                    "real images. Run under torchrun for data-parallel training.")
    p.add_argument("--config", help="YAML config file or shipped name (synth, baseline, synth-only, "
                                     "tiny-cpu); with --resume defaults to RUN_DIR/config.yaml")
    p.add_argument("-o", "--out", required=True, metavar="RUN_DIR", help="run folder (checkpoints, metrics, logs)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N or mps (overrides the config)")
    p.add_argument("--epochs", type=argtypes.positive_int, help="override epochs")
    p.add_argument("--iterations-per-epoch", type=argtypes.positive_int, help="override iterations_per_epoch")
    p.add_argument("--seed", type=argtypes.seed, help="override seed")
    p.add_argument("--num-workers", type=int, help="override num_workers (real-data loader processes)")
    p.add_argument("--threads", type=argtypes.positive_int, help="override threads (CPU threads for torch)")
    p.add_argument("--checkpoint-every", type=int, help="override checkpoint_every (iterations)")
    argtypes.add_set(p)
    p.add_argument("--stop-after", type=argtypes.positive_int, metavar="N",
                   help="stop after N iterations in total (with a checkpoint); resume later with --resume")
    p.add_argument("--time-limit", type=argtypes.positive_float, metavar="MIN",
                   help="stop (with a checkpoint) after this many minutes of training; --resume continues")
    p.add_argument("--time-budget", dest="time_budget_min", type=argtypes.positive_float, metavar="MIN",
                   help="override time_budget_min: fit the whole run into this many minutes, in whole epochs, "
                        "with its learning-rate schedule re-fitted to end there (unlike --time-limit, the run "
                        "is then finished)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="show the progress bar (default: only on a terminal)")
    p.set_defaults(func=run)


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The config keys this invocation overrides: the flags named like a key, then ``--set``."""
    keys = ("device", "epochs", "iterations_per_epoch", "seed", "num_workers", "threads", "checkpoint_every",
            "time_budget_min")
    return deep_update({k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}, parse_set(args.set))


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """The config of this invocation: --config (or the run's recorded config on --resume) + overrides."""
    overrides = overrides_from_args(args)
    if args.config is not None:
        return load_train_config(args.config, overrides)
    if not args.resume:
        raise ConfigError("train: --config is required (unless resuming a run with --resume)")
    rec = recorded_config(Path(args.out))
    if rec is None:
        raise ConfigError(f"{Path(args.out) / 'config.yaml'}: no recorded config to resume; give --config")
    return config_from_dict(deep_update(rec, overrides), where=str(Path(args.out) / "config.yaml"))


def run(args: argparse.Namespace) -> int:
    from lesionsynth.train.loop import train

    cfg = resolve_config(args)
    res = train(cfg, Path(args.out), resume=args.resume, stop_after=args.stop_after,
                progress_bar=args.progress, time_limit_min=args.time_limit)
    from lesionsynth.train.ddp import env_info

    if env_info().is_main:
        best = f", best validation lesion Dice {res.best_dice:.4f}" if res.best_dice >= 0 else ""
        if res.iterations_run == 0:
            print(f"nothing to do: {res.run_dir} has already trained {res.iterations} iterations{best}")
        else:
            end = res.planned_iterations or cfg.total_iterations
            stopped = (f" (stopped at the time limit; --resume continues to {end})"
                       if res.iterations < min(end, args.stop_after or end) else "")
            if res.planned_iterations and res.planned_iterations < cfg.total_iterations:
                stopped += (f" (the time budget of {cfg.time_budget_min:g} min fitted the run to "
                            f"{res.planned_iterations} of {cfg.total_iterations} iterations)")
            print(f"trained {res.iterations} iterations into {res.run_dir} (last loss {res.last_loss:.4f}{best})"
                  f"{stopped}")
    return 0
