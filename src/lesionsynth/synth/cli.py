"""``lesionsynth synth``: write a synthetic nnU-Net-style training set."""

from __future__ import annotations

import argparse
from pathlib import Path

from lesionsynth import argtypes
from lesionsynth.config import deep_update, parse_set


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate a synthetic labelled training set (domain randomisation)",
                       description="Generate synthetic images and labels into an nnU-Net-style folder.")
    p.add_argument("--out", "-o", required=True, type=Path, help="output dataset folder")
    p.add_argument("-n", "--n", type=argtypes.count, required=True, help="number of cases")
    p.add_argument("-i", "--input", "--labels", dest="labels", nargs="+", default=None,
                   help="'default' (MNI152 tissue maps) or label-map files/folders (default: from config)")
    p.add_argument("--lesions", default=None, help="'procedural' or a folder of binary lesion masks")
    p.add_argument("--config", type=str, default=None, help="YAML SynthConfig (see docs)")
    argtypes.add_set(p)
    p.add_argument("--seed", type=argtypes.seed, default=0, help="run seed: case i is a function of (seed, i)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--preview", action="store_true", help="write a PNG preview per case")
    argtypes.add_parts(p, "case")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionsynth.synth.build import build_dataset
    from lesionsynth.synth.generator import load_synth_config

    cfg = load_synth_config(args.config, **deep_update(parse_set(args.set), {
        k: v for k, v in (("labels", args.labels), ("lesions", args.lesions)) if v is not None}))
    res = build_dataset(cfg, args.out, args.n, seed=args.seed, device=args.device, preview=args.preview,
                        part=args.part, num_parts=args.num_parts)
    out = res.out
    print(f"wrote {res.written} case(s) to {out}" + (f" ({res.skipped} already done)" if res.skipped else ""))
    print(f"  images:   {out / 'imagesTr'}")
    print(f"  labels:   {out / 'labelsTr'}")
    if args.preview:
        print(f"  previews: {out / 'previews'}")
    return 0
