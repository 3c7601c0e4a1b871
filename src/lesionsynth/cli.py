"""``lesionsynth`` command line: one verb per pipeline stage.

Each stage module exposes ``register(subparsers)`` that adds its verb(s) with a ``func`` default
taking the parsed ``argparse.Namespace`` and returning an exit code. User errors
(:class:`~lesionsynth.errors.LesionsynthError`) are printed as one line on stderr with exit code 2;
set ``LESIONSYNTH_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

from lesionsynth import __version__
from lesionsynth.errors import LesionsynthError

# stage modules, in the order their verbs are listed in --help
STAGES = [
    "lesionsynth.synth.cli",           # synth
    "lesionsynth.train.cli",           # train
    "lesionsynth.infer.cli",           # predict
    "lesionsynth.pretrained.cli",      # models
    "lesionsynth.evaluate.cli",        # evaluate
    "lesionsynth.generative.gan.cli",  # gan ...
    "lesionsynth.generative.ldm.cli",  # ldm ...
    "lesionsynth.demo.cli",            # demo, experiment
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lesionsynth",
        description="Synthetic, perfectly labelled brain MRI for lesion segmentation.",
    )
    parser.add_argument("--version", action="version", version=f"lesionsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in STAGES:
        try:
            if importlib.util.find_spec(name) is None:
                continue
        except ModuleNotFoundError:  # parent package not present
            continue
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    debug = os.environ.get("LESIONSYNTH_DEBUG") == "1"
    try:
        return int(args.func(args) or 0)
    except LesionsynthError as e:
        if debug:
            raise
        print(f"lesionsynth {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print(f"lesionsynth {args.command}: interrupted", file=sys.stderr)
        return 130
    except (MemoryError, OSError) as e:
        if debug:
            raise
        print(f"lesionsynth {args.command}: error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
