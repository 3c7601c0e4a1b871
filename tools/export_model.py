"""Export a training checkpoint as a bundled-model file (inference part only, fp16 weights).

    python tools/export_model.py RUN/checkpoints/last.pt -o src/lesionsynth/pretrained/NAME.pt
    python tools/export_model.py R/b/checkpoints/last.pt R/c/checkpoints/last.pt -o averaged.pt

Several checkpoints of the same network are averaged uniformly (weight averaging of cycle ends).
"""

from __future__ import annotations

import argparse
import sys

from lesionsynth.errors import InputError
from lesionsynth.models import export_model


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", nargs="+", help="checkpoint files or run folders (several: averaged)")
    ap.add_argument("-o", "--out", required=True, help="the .pt file to write")
    ap.add_argument("--fp32", action="store_true", help="keep fp32 weights")
    args = ap.parse_args(argv)
    try:
        out = export_model(args.checkpoints, args.out, half=not args.fp32)
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
