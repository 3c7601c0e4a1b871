"""``lesionsynth ldm``: train, sample and check the latent-diffusion generators.

Sub-verbs: ``train-autoencoder``, ``train-diffusion``, ``sample``, ``render``, ``build-dataset``,
``check-conditioning``. See ``docs/ldm.md``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from lesionsynth import argtypes
from lesionsynth.config import deep_update, parse_set
from lesionsynth.errors import InputError


def _add_device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default="auto", help="auto (CUDA if available), cpu, cuda or cuda:N")


def _add_sampling(p: argparse.ArgumentParser, guidance: bool = True) -> None:
    if guidance:
        p.add_argument("--guidance", type=float, default=None,
                       help="classifier-free guidance scale G (default: the config's sampling.guidance)")
    p.add_argument("--steps", type=int, default=None, help="DDIM steps (default: the config's sampling.steps)")
    p.add_argument("--batch-size", type=int, default=None, help="maps denoised together")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="seed of the generated maps")
    _add_device(p)


def register(subparsers) -> None:
    """Add the ``ldm`` verb and its sub-verbs."""
    ldm = subparsers.add_parser("ldm", help="latent diffusion generators: label maps under a volume "
                                "condition, images for label maps",
                                description="Latent diffusion generators (see docs/ldm.md).")
    sub = ldm.add_subparsers(dest="ldm_command", metavar="SUBCOMMAND")
    ldm.set_defaults(func=lambda args: (ldm.print_help(), 2)[1])

    p = sub.add_parser("train-autoencoder", help="train the first stage (KL autoencoder)")
    p.add_argument("--config", help="LDM config YAML (path or shipped name, e.g. ldm-lesion-mask)")
    p.add_argument("--lesions", help="training data: folder of binary lesion masks (sets data.lesions)")
    p.add_argument("--labels", help="training data: 'default' (MNI152), a label-map file or folder (sets data.labels)")
    p.add_argument("--dataset", help="training data: nnU-Net-style folder (sets data.dataset)")
    _add_run(p)
    p.set_defaults(func=run_train_autoencoder)

    p = sub.add_parser("train-diffusion", help="train the latent diffusion UNet on a trained autoencoder")
    p.add_argument("--autoencoder", help="train-autoencoder run folder (not needed with --resume)")
    p.add_argument("--config", help="LDM config (default: the autoencoder run's)")
    _add_run(p)
    p.set_defaults(func=run_train_diffusion)

    p = sub.add_parser("sample", help="generate label maps at condition C (and images with --image-model)")
    p.add_argument("--model", required=True, help="train-diffusion run of a mask LDM")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--condition", type=float, help="normalised condition c (0..1 = training range)")
    which.add_argument("--condition-range", type=float, nargs=2, metavar=("A", "B"),
                       help="map i gets its own c ~ U(A, B), drawn from (seed, i) as in build-dataset (a "
                            "volume-guided set)")
    p.add_argument("-n", "--n", type=argtypes.count, default=8, help="number of maps")
    p.add_argument("-o", "--out", required=True, help="output folder")
    p.add_argument("--image-model", help="train-diffusion run of an image LDM to render each map")
    p.add_argument("--image-guidance", type=float, default=None, help="guidance scale of the image LDM")
    _add_sampling(p)
    p.set_defaults(func=run_sample)

    p = sub.add_parser("render", help="render an image for each label map with an image LDM")
    p.add_argument("--model", required=True, help="train-diffusion run of an image LDM")
    p.add_argument("-i", "--input", "--labels", dest="labels", required=True,
                   help="label maps: 'default' (MNI152), a NIfTI file or a folder")
    p.add_argument("--mapping", default=None,
                   help="mapping table for hard maps (default freesurfer-to-<schema>; "
                   "'identity' for maps already in the model's classes)")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _add_sampling(p)
    p.set_defaults(func=run_render)

    p = sub.add_parser("build-dataset", help="write generated (map, image) pairs as a dataset folder")
    p.add_argument("--model", required=True, help="train-diffusion run of a mask LDM")
    p.add_argument("--image-model", required=True, help="train-diffusion run of an image LDM (same classes)")
    p.add_argument("--condition-range", type=float, nargs=2, metavar=("A", "B"), default=(0.0, 1.0),
                   help="conditions are drawn uniformly from [A, B]")
    p.add_argument("-n", "--n", type=argtypes.count, required=True, help="number of cases")
    p.add_argument("-o", "--out", required=True, help="dataset folder (resumable: finished cases are kept)")
    p.add_argument("--image-guidance", type=float, default=None, help="guidance scale of the image LDM")
    p.add_argument("--channel-name", default="image", help="channel name in dataset.json")
    p.add_argument("--previews", action="store_true", help="also write previews/{case}.png")
    _add_sampling(p)
    p.set_defaults(func=run_build_dataset)

    p = sub.add_parser("check-conditioning", help="generated structure volume against c for several G")
    p.add_argument("--model", required=True, help="train-diffusion run of a mask LDM")
    p.add_argument("-o", "--out", required=True, help="output folder (table, plot, csv, json)")
    p.add_argument("--conditions", type=float, nargs="+", default=None,
                   help="conditions c (default: 0, 0.1, ..., 1)")
    p.add_argument("--guidance", type=float, nargs="+", default=[1.0, 2.0, 3.0, 4.0, 5.0],
                   help="guidance scales G (default 1 2 3 4 5)")
    p.add_argument("-n", "--n", type=argtypes.count, default=8, help="maps per (G, c)")
    _add_sampling(p, guidance=False)
    p.set_defaults(func=run_check_conditioning)


def _add_run(p: argparse.ArgumentParser) -> None:
    """The options of both training stages."""
    argtypes.add_set(p)
    p.add_argument("-o", "--out", required=True, help="run folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--iterations", type=argtypes.positive_int, default=None, help="override the total number of steps")
    p.add_argument("--seed", type=argtypes.seed, default=None, help="random seed (overrides the config's seed)")
    _add_device(p)


def _check_common(args: argparse.Namespace) -> None:
    for name in ("steps", "batch_size", "n"):
        v = getattr(args, name, None)
        if v is not None and v < 1:
            raise InputError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    for name in ("guidance", "image_guidance", "condition", "condition_range"):
        v = getattr(args, name, None)
        for x in v if isinstance(v, (list, tuple)) else [v]:
            if x is not None and not math.isfinite(x):
                raise InputError(f"--{name.replace('_', '-')}: not a finite number")
            if x is not None and not name.startswith("condition") and x < 0:
                raise InputError(f"--{name.replace('_', '-')} must be >= 0, got {x}")


def _overrides(args: argparse.Namespace) -> dict:
    """``--set`` values, plus ``--seed`` as the config's ``seed``."""
    overrides = parse_set(args.set)
    if args.seed is not None:
        overrides["seed"] = args.seed
    return overrides


def run_train_autoencoder(args: argparse.Namespace) -> int:
    from lesionsynth.config import from_dict
    from lesionsynth.generative.ldm.config import LDMConfig
    from lesionsynth.generative.ldm.train import train_autoencoder
    from lesionsynth.runs.folder import config_for_start

    if args.config is None and not args.resume:
        raise InputError("train-autoencoder: give --config (or --resume an existing run)")
    data = {k: getattr(args, k) for k in ("lesions", "labels", "dataset") if getattr(args, k)}
    overrides = deep_update(_overrides(args), {"data": data} if data else {})
    cfg = from_dict(LDMConfig, config_for_start(args.out, args.resume, args.config, overrides),
                    where=str(args.config or Path(args.out) / "config.yaml"))
    metrics = train_autoencoder(cfg, args.out, args.device, resume=args.resume, iterations=args.iterations)
    print(f"autoencoder: {Path(args.out) / 'checkpoints' / 'last.pt'}; training-set reconstruction: "
          + json.dumps({k: round(v, 4) for k, v in metrics.items()}))
    return 0


def run_train_diffusion(args: argparse.Namespace) -> int:
    from lesionsynth.config import from_dict
    from lesionsynth.generative.ldm.config import LDMConfig
    from lesionsynth.generative.ldm.train import train_diffusion
    from lesionsynth.runs.folder import config_for_start

    if args.autoencoder is None and not args.resume:
        raise InputError("train-diffusion: give --autoencoder (or --resume an existing run)")
    if (args.set or args.seed is not None) and not (args.resume or args.config):
        raise InputError("train-diffusion: --set and --seed need --config or --resume (otherwise the "
                         "autoencoder run's config is used)")
    cfg = None
    if args.resume or args.config:
        cfg = from_dict(LDMConfig, config_for_start(args.out, args.resume, args.config, _overrides(args)),
                        where=str(args.config or Path(args.out) / "config.yaml"))
    res = train_diffusion(cfg, args.autoencoder, args.out, args.device, resume=args.resume,
                          iterations=args.iterations)
    print(f"diffusion: {Path(args.out) / 'checkpoints' / 'last.pt'}; latent scale factor "
          f"{res['scale_factor']:.4f}, last logged loss {res['loss']:.4f}")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    from lesionsynth.generative.ldm.build import sample_to_folder
    from lesionsynth.generative.ldm.models import check_compatible, load_image_ldm, load_mask_ldm

    _check_common(args)
    mask = load_mask_ldm(args.model, args.device)
    image = None
    if args.image_model:
        image = load_image_ldm(args.image_model, args.device)
        check_compatible(mask, image, args.model, args.image_model)
    condition = tuple(args.condition_range) if args.condition_range else args.condition
    rows = sample_to_folder(mask, args.out, condition, args.n, args.guidance, args.seed, args.steps,
                            args.batch_size, image, args.image_guidance)
    vols = [r["volume_ml"] for r in rows]
    assert mask.condition is not None
    target = sum(mask.condition.ratio(r["condition"]) for r in rows) / len(rows)
    print(f"wrote {len(rows)} maps to {args.out}; {mask.condition.label} volume "
          f"{min(vols):.1f}-{max(vols):.1f} ml "
          f"(mean {sum(vols) / len(vols):.1f}); requested mean ratio {target:.5f}, generated mean "
          f"{sum(r['ratio'] for r in rows) / len(rows):.5f}")
    return 0


def run_render(args: argparse.Namespace) -> int:
    import torch

    from lesionsynth.generative.ldm.build import render_to_folder
    from lesionsynth.generative.ldm.data import label_maps_on_grid
    from lesionsynth.generative.ldm.models import load_image_ldm

    _check_common(args)
    image = load_image_ldm(args.model, args.device)
    labels, names, _ = label_maps_on_grid(args.labels, image.schema, args.mapping, image.cfg.grid)
    render_to_folder(image, torch.stack(labels).long(), names, args.out, args.guidance, args.seed, args.steps,
                     args.batch_size)
    print(f"rendered {len(names)} image(s) into {args.out}")
    return 0


def run_build_dataset(args: argparse.Namespace) -> int:
    from lesionsynth.generative.ldm.build import build_dataset
    from lesionsynth.generative.ldm.models import check_compatible, load_image_ldm, load_mask_ldm

    _check_common(args)
    lo, hi = args.condition_range
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo > hi:
        raise InputError(f"--condition-range {lo} {hi}: need finite A <= B")
    mask = load_mask_ldm(args.model, args.device)
    image = load_image_ldm(args.image_model, args.device)
    check_compatible(mask, image, args.model, args.image_model)
    written = build_dataset(mask, image, args.out, args.n, (lo, hi), args.guidance, args.image_guidance,
                            args.seed, args.steps, args.batch_size, args.previews, args.channel_name)
    print(f"{args.out}: {written} case(s) written, {args.n - written} already there")
    return 0


def run_check_conditioning(args: argparse.Namespace) -> int:
    from lesionsynth.generative.ldm.conditioning import check_conditioning
    from lesionsynth.generative.ldm.models import load_mask_ldm

    _check_common(args)
    conditions = args.conditions or [round(0.1 * i, 2) for i in range(11)]
    summary = check_conditioning(load_mask_ldm(args.model, args.device), args.out, conditions, args.guidance,
                                 args.n, args.seed, args.steps, args.batch_size)
    for g, s in summary["per_guidance"].items():
        print(f"G={float(g):g}: Pearson r={s['pearson']:.3f}, Spearman rho={s['spearman']:.3f}, "
              f"mean |c_gen - c|={s['mae']:.3f}")
    print(f"table, plot and csv in {args.out}")
    return 0
