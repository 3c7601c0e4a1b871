"""``lesionsynth synth``: write a synthetic nnU-Net-style training set."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from lesionsynth import argtypes
from lesionsynth.config import to_dict
from lesionsynth.data import case_done, write_case, write_dataset_json
from lesionsynth.data.folder import resume_generated_set
from lesionsynth.errors import InputError
from lesionsynth.io.atomic import remove_stale_temporaries
from lesionsynth.log import tqdm


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("synth", help="generate a synthetic labelled training set (domain randomisation)",
                       description="Generate synthetic images and labels into an nnU-Net-style folder.")
    p.add_argument("--out", "-o", required=True, type=Path, help="output dataset folder")
    p.add_argument("-n", "--n", type=argtypes.count, required=True, help="number of cases")
    p.add_argument("--labels", nargs="+", default=None,
                   help="'default' (MNI152 tissue maps) or label-map files/folders (default: from config)")
    p.add_argument("--lesions", default=None, help="'procedural' or a folder of binary lesion masks")
    p.add_argument("--config", type=str, default=None, help="YAML SynthConfig (see docs)")
    p.add_argument("--seed", type=argtypes.seed, default=0, help="run seed: case i is a function of (seed, i)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--preview", action="store_true", help="write a PNG preview per case")
    argtypes.add_parts(p, "case")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionsynth.devices import resolve_device
    from lesionsynth.synth.generator import SynthGenerator, load_synth_config
    from lesionsynth.viz import save_preview

    if args.n < 1:
        raise InputError(f"--n must be >= 1, got {args.n}")
    argtypes.check_parts(args.part, args.num_parts)
    cfg = load_synth_config(args.config, labels=args.labels, lesions=args.lesions)
    out: Path = args.out
    signature = {"generator": "synth", "seed": args.seed, "config": to_dict(cfg)}
    n_total = resume_generated_set(out, signature, args.n)
    gen = SynthGenerator(cfg, device=resolve_device(args.device))
    schema = gen.schema
    out.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out, older_than_s=600 if args.num_parts > 1 else 0)
    write_dataset_json(out, {"0": "synthetic"}, {c: i for i, c in enumerate(schema.classes)}, n_total,
                       extra={"lesionsynth": {**signature, "schema": schema.to_dict()}})
    mine = range(args.part, args.n, args.num_parts)
    todo = [i for i in mine if not case_done(out, f"case_{i:04d}")]
    skipped = len(mine) - len(todo)
    for i in tqdm(todo, desc="synth", unit="case", file=sys.stderr, disable=None):
        cid = f"case_{i:04d}"
        s = gen.sample(i, args.seed)
        img = s.image[0].cpu().numpy()
        tgt = s.target.cpu().numpy().astype(np.uint8)
        if args.preview:
            save_preview(out / "previews" / f"{cid}.png", img, lesion=tgt == schema.lesion_index,
                         labels=tgt, title=f"{cid} (seed {args.seed})")
        write_case(out, cid, [img], tgt, s.affine, params=s.params)
    print(f"wrote {len(todo)} case(s) to {out}" + (f" ({skipped} already done)" if skipped else ""))
    print(f"  images:   {out / 'imagesTr'}")
    print(f"  labels:   {out / 'labelsTr'}")
    if args.preview:
        print(f"  previews: {out / 'previews'}")
    return 0
