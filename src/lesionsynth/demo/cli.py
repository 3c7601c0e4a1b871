"""``lesionsynth demo`` and ``lesionsynth experiment run``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lesionsynth import argtypes
from lesionsynth.errors import InputError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the whole pipeline on the bundled default and write a report",
                       description="Synthesise, train the tiny configuration, predict, evaluate, report.")
    p.add_argument("--out", "-o", type=Path, default=Path("demo_out"), help="output folder (default demo_out)")
    p.add_argument("--n-heldout", type=argtypes.count, default=8, help="held-out synthetic test cases (default 8)")
    p.add_argument("--config", default="tiny-cpu", help="training config (default tiny-cpu)")
    p.add_argument("--epochs", type=argtypes.positive_int, default=None, help="override the training epochs")
    p.add_argument("--iterations-per-epoch", type=argtypes.positive_int, default=None,
                   help="override iterations per epoch")
    p.add_argument("--train-minutes", type=argtypes.positive_float, default=14.0, metavar="MIN",
                   help="time budget of the training stage: on a slow machine the run is fitted to fewer whole "
                        "epochs, its schedule re-fitted, so that the demo stays within 20 minutes on 2 cores "
                        "(default 14; the tiny-cpu config's 2700 iterations take about 14 min on 2 cores)")
    p.add_argument("--no-train-budget", dest="train_minutes", action="store_const", const=None,
                   help="train the config's full length, however long it takes")
    p.add_argument("--seed", type=argtypes.seed, default=0)
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--gan-masks", type=Path, default=None, help="mask-GAN checkpoint (optional)")
    p.add_argument("--gan-translator", type=Path, default=None, help="label-to-image translator checkpoint")
    p.add_argument("--ldm-mask", type=Path, default=None, help="mask LDM checkpoint (optional)")
    p.add_argument("--ldm-image", type=Path, default=None, help="SPADE image LDM checkpoint (optional)")
    p.set_defaults(func=_run_demo)

    e = sub.add_parser("experiment", help="run a paper's experiment design (train -> predict -> evaluate)")
    esub = e.add_subparsers(dest="experiment_command", metavar="ACTION")
    r = esub.add_parser("run", help="run an experiment config (see configs/experiments/)")
    r.add_argument("config", help="experiment YAML (path or shipped name)")
    r.add_argument("--out", "-o", type=Path, default=None, help="output folder (default experiments/NAME)")
    r.set_defaults(func=_run_experiment)
    e.set_defaults(func=lambda a: (e.print_help(), 2)[1])


def _run_demo(args: argparse.Namespace) -> int:
    from lesionsynth.demo.run import DemoOptions, run_demo
    from lesionsynth.devices import resolve_device

    resolve_device(args.device)  # an unknown or unavailable device fails here, before any work
    for flag in ("gan_masks", "gan_translator", "ldm_mask", "ldm_image"):
        path = getattr(args, flag)
        if path is not None and not path.exists():
            raise InputError(f"--{flag.replace('_', '-')} {path}: not found (a run folder or checkpoint)")

    try:
        run_demo(DemoOptions(out=args.out, n_heldout=args.n_heldout, train_config=args.config,
                             epochs=args.epochs, iterations_per_epoch=args.iterations_per_epoch,
                             train_minutes=args.train_minutes, seed=args.seed, device=args.device,
                             threads=getattr(args, "threads", None),
                             gan_masks=args.gan_masks, gan_translator=args.gan_translator,
                             ldm_mask=args.ldm_mask, ldm_image=args.ldm_image))
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to continue", file=sys.stderr)
        return 130
    return 0


def _run_experiment(args: argparse.Namespace) -> int:
    from lesionsynth.demo.experiment import load_experiment, run_experiment

    out = args.out or Path("experiments") / load_experiment(args.config).name
    res = run_experiment(args.config, out)
    print(f"experiment report: {Path(res['report']).resolve()}")
    return 0
