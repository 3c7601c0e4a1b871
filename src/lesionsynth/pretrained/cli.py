"""``lesionsynth models``: the models shipped with the package."""

from __future__ import annotations

import argparse
import textwrap


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("models", help="list the bundled (pretrained) models",
                              description="List the models shipped with lesionsynth, with the summary of "
                                          "their model card. Use one with `lesionsynth predict --model NAME`.")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from lesionsynth.pretrained import DEFAULT_MODEL, list_models

    models = list_models()
    if not models:
        print("no bundled models in this installation")
        return 0
    for m in models:
        mark = " (default)" if m.name == DEFAULT_MODEL else ""
        print(f"{m.name}{mark}  [{m.weights.stat().st_size / 1e6:.1f} MB]  card: {m.card}")
        print(textwrap.indent(textwrap.fill(m.summary, 96), "    "))
    return 0
