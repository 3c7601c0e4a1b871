"""``lesionsynth evaluate``: compare models' prediction folders with a truth folder."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from lesionsynth.errors import InputError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def parse_preds(items: list[str]) -> dict[str, Path]:
    """``NAME=DIR`` items -> {name: folder}; a bare ``DIR`` is named after the folder."""
    out: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep:
            name, folder = Path(item.rstrip("/")).name, item
        if not _NAME.match(name):
            raise InputError(f"--pred {item}: model name '{name}' must be letters, digits, _ - . +")
        if name in out:
            raise InputError(f"--pred {item}: model name '{name}' given twice")
        if not folder:
            raise InputError(f"--pred {item}: expected NAME=DIR")
        out[name] = Path(folder)
    return out


def parse_int_list(text: str, what: str) -> list[int]:
    """``1,2,3`` -> [1, 2, 3]; ``none`` -> []."""
    if text.strip().lower() in ("none", ""):
        return []
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"{what}: expected comma-separated integers, got '{text}'") from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score prediction folders against a truth folder (tables, tests, plots, report.html)",
        description="Score one or more models' predicted label maps against truth label maps: Dice, HD95, "
        "absolute volume and lesion-count differences, lesion-wise F1, per-class Dice; paired Wilcoxon "
        "tests; box/strip plots; report.html. See docs/evaluate.md.",
    )
    p.add_argument("--truth", required=True, metavar="DIR",
                   help="truth label maps: a folder of NIfTI files or an nnU-Net dataset folder")
    p.add_argument("--pred", required=True, action="append", metavar="NAME=DIR",
                   help="a model's predictions (repeat for several models)")
    p.add_argument("-o", "--out", required=True, metavar="OUT_DIR", help="output folder")
    p.add_argument("--label", type=int, default=5,
                   help="lesion label in multi-class files (default 5 = tissue schema); binary files use 1")
    p.add_argument("--protocol", choices=["native", "paper"], default="native",
                   help="native: score on the truth grid; paper: reslice both to 1 mm, pad to 256^3 "
                   "(SynthStroke)")
    p.add_argument("--tissue-classes", default=None, metavar="V,V,..",
                   help="class values for per-class Dice (default: classes of the truth's dataset.json, "
                   "or 1,2,3,4 for label 5; 'none' to skip)")
    p.add_argument("--volume-label", type=int, action="append", default=[], metavar="V",
                   help="also report the volume error (ml) of this class value (repeatable), e.g. ventricles")
    p.add_argument("--missing", choices=["skip", "empty"], default="skip",
                   help="truth cases without prediction: skip (reported, not scored) or score as empty")
    p.add_argument("--workers", type=int, default=1, help="parallel processes over cases (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionsynth.evaluate.api import evaluate_folders

    preds = parse_preds(args.pred)
    tissue = None if args.tissue_classes is None else parse_int_list(args.tissue_classes, "--tissue-classes")
    if args.workers < 1:
        raise InputError(f"--workers: must be >= 1, got {args.workers}")
    res = evaluate_folders(Path(args.truth), preds, Path(args.out), label=args.label, protocol=args.protocol,
                           tissue_classes=tissue, volume_labels=args.volume_label, missing=args.missing,
                           workers=args.workers)
    for model, means in res["summary"].items():
        fails = res["stats"][model]["hd95_mm"]["failures"]
        print(f"{model}: Dice {means['dice']:.3f}  HD95 {means['hd95_mm']:.2f} mm"
              + (f" ({fails} failed)" if fails else "")
              + f"  AVD {means['avd_ml']:.2f} ml  ALD {means['ald']:.2f}  lesion F1 {means['lesion_f1']:.3f}")
    print(f"report: {res['report_html']}")
    return 0
