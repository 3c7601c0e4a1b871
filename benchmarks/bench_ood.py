"""Out-of-distribution benchmark: lesion Dice and lesion-wise F1 per modality and resolution.

A segmenter is scored on physics-rendered scans (:mod:`lesionsynth.physics`: signal equations, literature
relaxation times and diffusivities, oblique grids, slice profiles, bias, Rician noise) that the
domain-randomised training generator never made. With ``../shared/data`` present the anatomy and lesions
are the ones the bundled model did NOT train on (SynthSeg label maps 13-15, LESYMAP subjects 090-100);
without it, the MNI default with procedural lesions (same anatomy as training, other lesions and images).
``--split training`` renders the same protocols from anatomy and lesions the bundled recipe trains on (SynthSeg
maps 10-12, LESYMAP subjects 080-089): a check of a run's contrast generalisation that never looks at the
held-out subjects, so it may select among runs without spending the test set.

    python benchmarks/bench_ood.py --model stroke-2mm                 # bundled model, 3 subjects, 8 flips
    python benchmarks/bench_ood.py --model runs/x --subjects 2 --fast # a run folder, quicker
    python benchmarks/bench_ood.py --model stroke-2mm --out benchmarks/results/ood-stroke-2mm.md

Prints one table (means over subjects) and, with ``--out``, writes it (Markdown) and the per-scan CSV.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# split -> (its name in the tables, SynthSeg label-map numbers, LESYMAP subject numbers)
SPLITS = {"heldout": ("held-out", range(13, 16), range(90, 101)),
          "training": ("training", range(10, 13), range(80, 90))}


def physics_split_config(shared: Path | None, split: str = "heldout"):
    """The physics generator's config for one split of the shared data (``SPLITS``) and its description; the
    MNI default with procedural lesions when the shared data are absent."""
    from lesionsynth.physics import PhysicsConfig

    name, maps, subjects = SPLITS[split]
    if shared is not None and (shared / "labelmaps-synthseg").is_dir() and (shared / "lesions-lesymap").is_dir():
        where = f"{name} SynthSeg maps {maps[0]}-{maps[-1]} + LESYMAP {subjects[0]:03d}-{subjects[-1]:03d}"
        labels = [str(shared / "labelmaps-synthseg" / f"training_seg_{i:02d}.nii.gz") for i in maps]
        lesions = [str(shared / "lesions-lesymap" / f"Subject_{i:03d}.nii.gz") for i in subjects]
        return PhysicsConfig(labels=labels, lesions=lesions), where
    return PhysicsConfig(), "MNI152 default + procedural lesions (../shared/data absent)"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="stroke-2mm", help="bundled name, run folder or checkpoint")
    ap.add_argument("--subjects", type=int, default=3, help="number of subjects (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--resolutions", nargs="+", default=["1mm", "thick"], choices=["1mm", "2mm", "thick"])
    ap.add_argument("--fast", action="store_true", help="no flips, overlap 0.25 (predict --fast)")
    ap.add_argument("--no-ensemble", action="store_true")
    ap.add_argument("--fusion", nargs="+", default=["probs"], choices=["logits", "probs", "union"],
                    help="ensemble fusion(s) to score (predict --fusion); several: one row each, same network "
                         "passes")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu", help="where the network runs: cpu (default), cuda, auto, ...")
    ap.add_argument("--shared", default=str(SHARED), help="shared data folder (default: ../shared/data)")
    ap.add_argument("--split", default="heldout", choices=sorted(SPLITS),
                    help="heldout (default): subjects no bundled recipe trains on; training: subjects it trains on")
    ap.add_argument("--out", default=None, help="write the table (.md) and per-scan rows (.csv) here")
    args = ap.parse_args(argv)

    import torch

    from lesionsynth.evaluate.ood import run_ood
    from lesionsynth.infer import PredictConfig, load_segmenter
    from lesionsynth.physics import PhysicsGenerator

    if args.threads:
        torch.set_num_threads(args.threads)
    shared = Path(args.shared) if args.shared and Path(args.shared).is_dir() else None
    cfg, where = physics_split_config(shared, args.split)
    t0 = time.perf_counter()
    gen = PhysicsGenerator(cfg)
    seg = load_segmenter(args.model, device=args.device)
    pc = PredictConfig(fast=args.fast)
    res = run_ood(gen, seg, range(args.subjects), args.resolutions, seed=args.seed, config=pc,
                  ensemble=not args.no_ensemble, fusions=args.fusion,
                  progress=lambda s: print(s, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    head = (f"OOD benchmark: model `{args.model}`, {where}, seed {args.seed}, "
            f"{'fast (no flips)' if args.fast else '8 flips'}, network on {next(seg.model.parameters()).device}, "
            f"{torch.get_num_threads()} thread(s), {wall / 60:.1f} min")
    table = res.markdown()
    print(head)
    print()
    print(table)
    if args.out:
        from lesionsynth.io.atomic import atomic_path

        out = Path(args.out)
        cmd = "python benchmarks/bench_ood.py " + " ".join(argv if argv is not None else sys.argv[1:])
        with atomic_path(out) as tmp:
            Path(tmp).write_text(f"{head}\n\n`{cmd}`\n\n{table}\n")
        res.write_csv(out.with_suffix(".csv"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
