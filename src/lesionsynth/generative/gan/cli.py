"""``lesionsynth gan``: train-masks, sample-masks, train-translator, build-dataset, mask-stats."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from lesionsynth import argtypes
from lesionsynth.config import deep_update, from_dict, load_config, parse_set
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.runs.folder import config_for_start


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="random seed (default 0)")


def _training(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--out", required=True, type=Path, help="run folder (checkpoints, metrics.csv, samples/)")
    p.add_argument("--iterations", type=argtypes.positive_int, help="override the config's number of iterations")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    p.add_argument("--time-limit", type=argtypes.positive_float, metavar="MIN",
                   help="stop (with a checkpoint) after this many minutes; --resume continues")
    _common(p)


def register(subparsers: Any) -> None:
    gan = subparsers.add_parser(
        "gan", help="lesion-mask GAN, label->image translators, synthetic database builder",
        description="The GAN generator family: invent lesion masks, render label maps as images, and build "
                    "a synthetic nnU-Net-style database. See docs/gan.md.")
    gan.set_defaults(func=lambda args: (gan.print_help(), 2)[1])
    sub = gan.add_subparsers(dest="gan_command", metavar="SUBCOMMAND")

    p = sub.add_parser("train-masks", help="train the lesion-mask GAN (WGAN-GP) on a folder of real masks")
    p.add_argument("-i", "--input", "--lesions", dest="lesions", type=Path,
                   help="folder of binary lesion masks (NIfTI, MNI space)")
    p.add_argument("--max-masks", type=int, metavar="N", help="use only the first N masks (sorted by name)")
    p.add_argument("--config", help="YAML config or shipped name (default: gan-masks; with --resume: the run's)")
    argtypes.add_set(p)
    _training(p)
    p.set_defaults(func=run_train_masks)

    p = sub.add_parser("sample-masks", help="write binary masks from a trained mask GAN (MNI 1 mm grid)")
    p.add_argument("--model", required=True, type=Path, help="mask GAN run folder or checkpoint")
    p.add_argument("-o", "--out", required=True, type=Path, help="output folder (mask_00000.nii.gz, ...)")
    p.add_argument("-n", "--n", type=argtypes.count, default=100, help="number of masks (default 100)")
    _common(p)
    p.set_defaults(func=run_sample_masks)

    p = sub.add_parser("train-translator", help="train a label-map -> image translator (pix2pix or SPADE)")
    p.add_argument("--arch", choices=["pix2pix", "spade"], help="network (default: the config's)")
    p.add_argument("--config", help="YAML config or shipped name (default: gan-ARCH; with --resume: the run's)")
    argtypes.add_set(p)
    p.add_argument("-i", "--input", "--pairs", dest="pairs",
                   help="'mni' (template + its tissue labels) or a dataset folder (nnU-Net layout)")
    p.add_argument("--lesions", help="simulated lesions of the pairs: procedural, none, or a mask folder")
    p.add_argument("--spatial-dims", type=int, choices=[2, 3], help="2 (axial slices) or 3 (volumes)")
    p.add_argument("--max-cases", type=int, metavar="N", help="dataset --pairs: use only the first N cases")
    _training(p)
    p.set_defaults(func=run_train_translator)

    p = sub.add_parser("build-dataset", help="paste lesions into healthy label maps and render them")
    p.add_argument("--translator", required=True, type=Path, help="translator run folder or checkpoint")
    p.add_argument("-o", "--out", required=True, type=Path, help="dataset folder (imagesTr/, labelsTr/, ...)")
    p.add_argument("-n", "--n", type=argtypes.count, default=100, help="number of cases (default 100)")
    p.add_argument("--config", default="gan-build", help="YAML config or shipped name (default gan-build)")
    argtypes.add_set(p)
    p.add_argument("--labels", help="healthy label maps: default (MNI) or a file/folder")
    p.add_argument("--lesions", help="procedural, a folder of masks, or a mask GAN run folder")
    p.add_argument("--output-labels", choices=["schema", "lesion"],
                   help="write all schema classes, or background/lesion only (to merge with such real data)")
    _common(p)
    p.set_defaults(func=run_build_dataset)

    p = sub.add_parser("mask-stats", help="volume / component-count table of mask folders")
    p.add_argument("folders", nargs="+", help="NAME=FOLDER (or FOLDER) of binary masks")
    p.add_argument("--limit", type=int, help="use only the first N masks of each folder")
    p.set_defaults(func=run_mask_stats)


def _where(args: argparse.Namespace, default: str) -> str:
    """Where a config error points: the given --config, else the run's recorded config on --resume, else the
    shipped default."""
    if args.config:
        return str(args.config)
    return str(Path(args.out) / "config.yaml") if args.resume else default


def _check_positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")


def run_train_masks(args: argparse.Namespace) -> int:
    from lesionsynth.devices import resolve_device
    from lesionsynth.generative.gan.mask_gan import MaskGANConfig, train_mask_gan

    _check_positive("--max-masks", args.max_masks)
    overrides = deep_update(parse_set(args.set), {"iterations": args.iterations} if args.iterations else {})
    cfg = from_dict(MaskGANConfig, config_for_start(args.out, args.resume, args.config, overrides, "gan-masks"),
                    where=_where(args, "gan-masks"))
    ckpt = train_mask_gan(cfg, args.lesions, args.out, resolve_device(args.device), seed=args.seed,
                          resume=args.resume, time_limit_min=args.time_limit, max_masks=args.max_masks)
    print(f"mask GAN checkpoint: {ckpt}", file=sys.stderr)
    return 0


def run_sample_masks(args: argparse.Namespace) -> int:
    from lesionsynth.devices import resolve_device
    from lesionsynth.generative.gan.mask_sampling import write_masks

    summary = write_masks(args.model, args.out, args.n, seed=args.seed, device=resolve_device(args.device))
    print(f"{args.n} masks in {args.out} (redraws of too-small masks: {summary['redraws_this_call']})",
          file=sys.stderr)
    return 0


def run_train_translator(args: argparse.Namespace) -> int:
    from lesionsynth.devices import resolve_device
    from lesionsynth.generative.gan.translator import TranslatorConfig, train_translator

    default = f"gan-{args.arch or 'pix2pix'}"
    overrides: dict[str, Any] = parse_set(args.set)
    overrides.update({k: getattr(args, k) for k in ("arch", "spatial_dims", "iterations") if getattr(args, k)})
    pairs: dict[str, Any] = {}
    if args.pairs:
        if args.pairs != "mni" and not Path(args.pairs).is_dir():
            raise InputError(f"{args.pairs}: --pairs must be 'mni' or a dataset folder")
        pairs["source"] = args.pairs
    if args.max_cases:
        _check_positive("--max-cases", args.max_cases)
        pairs["max_cases"] = args.max_cases
    if args.lesions:
        if args.lesions not in ("procedural", "none") and not Path(args.lesions).exists():
            raise InputError(f"{args.lesions}: lesion folder not found")
        pairs["lesions"] = args.lesions
    if pairs:
        overrides = deep_update(overrides, {"pairs": pairs})
    cfg = from_dict(TranslatorConfig, config_for_start(args.out, args.resume, args.config, overrides, default),
                    where=_where(args, default))
    ckpt = train_translator(cfg, args.out, resolve_device(args.device), seed=args.seed, resume=args.resume,
                            time_limit_min=args.time_limit)
    print(f"translator checkpoint: {ckpt}", file=sys.stderr)
    return 0


def run_build_dataset(args: argparse.Namespace) -> int:
    from lesionsynth.devices import resolve_device
    from lesionsynth.generative.gan.database import BuildConfig, build_dataset

    overrides = deep_update(parse_set(args.set),
                            {k: getattr(args, k) for k in ("labels", "lesions", "output_labels") if getattr(args, k)})
    cfg = load_config(BuildConfig, args.config, overrides)
    out = build_dataset(args.translator, args.out, args.n, cfg, seed=args.seed,
                        device=resolve_device(args.device))
    print(f"{args.n} cases in {out}", file=sys.stderr)
    return 0


def run_mask_stats(args: argparse.Namespace) -> int:
    from lesionsynth.generative.gan.stats import comparison_table, folder_stats

    groups = {}
    for item in args.folders:
        name, _, folder = item.rpartition("=") if "=" in item else (item, "", item)
        if not Path(folder).is_dir():
            raise InputError(f"{folder}: mask folder not found")
        stats = folder_stats(folder, args.limit)
        if not stats:
            raise InputError(f"{folder}: no NIfTI masks")
        groups[name] = stats
    print(comparison_table(groups))
    return 0
