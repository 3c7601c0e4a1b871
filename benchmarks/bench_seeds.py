"""Stability of a training recipe: train it with several seeds at a reduced length, score each run on the
out-of-distribution benchmark, print per-seed lesion Dice and its spread per protocol.

The issue's rule: a recipe whose OOD result flips between seeds is not done. Use this for the bundled
recipe and for its T1w-only baseline (``configs/baseline-physics-t1w.yaml``) with the same budget:

    python benchmarks/bench_seeds.py --config bundled-cpu --seeds 0 1 2 --iterations 3000 --out runs/seeds
    python benchmarks/bench_seeds.py --config baseline-physics-t1w --seeds 0 1 2 --iterations 3000 \\
        --out runs/seeds-baseline

Runs resume (each seed's run folder is kept), so the command can be re-run after an interruption. Scoring
uses ``--fast`` predictions (no flips) on the held-out physics scans of ``bench_ood.py``. Needs
``../shared/data`` for the bundled recipe's label maps and lesions.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="training config (file or shipped name)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--iterations", type=int, required=True, help="iterations per seed (the schedule's length)")
    ap.add_argument("--out", required=True, help="folder of the per-seed run folders")
    ap.add_argument("--subjects", type=int, default=2, help="OOD subjects per seed (default 2)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    args = ap.parse_args(argv)

    import torch
    from bench_ood import SHARED, physics_split_config

    from lesionsynth.config import parse_set
    from lesionsynth.evaluate.ood import run_ood
    from lesionsynth.infer import PredictConfig, load_segmenter
    from lesionsynth.physics import PhysicsGenerator
    from lesionsynth.train.config import load_train_config
    from lesionsynth.train.loop import train

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = SHARED if SHARED.is_dir() else None
    pcfg, where = physics_split_config(shared)
    gen = PhysicsGenerator(pcfg)
    tables = {}
    for seed in args.seeds:
        overrides = {**parse_set(args.set), "seed": seed, "epochs": 1, "iterations_per_epoch": args.iterations,
                     "checkpoint_every": min(250, args.iterations)}
        if args.threads:
            overrides["threads"] = args.threads
        cfg = load_train_config(args.config, overrides)
        run = Path(args.out) / f"seed{seed}"
        t0 = time.perf_counter()
        train(cfg, run, resume=(run / "config.yaml").is_file(), progress_bar=False)
        seg = load_segmenter(run / "checkpoints" / "last.pt", device="cpu")
        res = run_ood(gen, seg, range(args.subjects), ("1mm", "thick"), config=PredictConfig(fast=True),
                      ensemble=False)
        tables[seed] = res.table("lesion_dice")
        print(f"seed {seed}: trained and scored in {(time.perf_counter() - t0) / 60:.1f} min", file=sys.stderr)
    keys = sorted(next(iter(tables.values())))
    print(f"Seed spread of `{args.config}`, {args.iterations} iterations per seed, OOD ({where}), "
          f"{args.subjects} subjects, fast predictions")
    print()
    print("| protocol | resolution | " + " | ".join(f"seed {s}" for s in args.seeds) + " | mean | sd |")
    print("|---|---|" + "---|" * (len(args.seeds) + 2))
    for k in keys:
        vals = [tables[s][k] for s in args.seeds]
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        print(f"| {k[0]} | {k[1]} | " + " | ".join(f"{v:.3f}" for v in vals)
              + f" | {statistics.mean(vals):.3f} | {sd:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
