"""``lesionsynth`` command line: one verb per pipeline stage.

Each stage module exposes ``register(subparsers)`` that adds its verb(s) with a ``func`` default
taking the parsed ``argparse.Namespace`` and returning an exit code. User errors
(:class:`~lesionsynth.errors.LesionsynthError`) are printed as one line on stderr with exit code 2;
set ``LESIONSYNTH_DEBUG=1`` to see tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lesionsynth import __version__
from lesionsynth.errors import LesionsynthError

# verb -> (stage module that registers it, one-line summary for the verb list), in --help order. Only the
# module of the verb being run is imported, so `lesionsynth --version` and `--help` stay fast (the stage
# modules import torch and MONAI); tests check that every module registers the verbs listed here.
VERBS: dict[str, tuple[str, str]] = {
    "synth": ("lesionsynth.synth.cli", "generate a synthetic labelled training set (domain randomisation)"),
    "train": ("lesionsynth.train.cli", "train a segmentation network (synthetic, real or mixed data)"),
    "predict": ("lesionsynth.infer.cli", "segment NIfTI scans (bundled model by default)"),
    "models": ("lesionsynth.pretrained.cli", "list the bundled (pretrained) models"),
    "evaluate": ("lesionsynth.evaluate.cli", "score predictions against ground truth"),
    "gan": ("lesionsynth.generative.gan.cli", "GAN generators: lesion masks and label-map -> image translation"),
    "ldm": ("lesionsynth.generative.ldm.cli", "latent diffusion generators (masks under a volume condition)"),
    "demo": ("lesionsynth.demo.cli", "run the whole pipeline on the bundled default and write a report"),
    "experiment": ("lesionsynth.demo.cli", "run a paper's experiment design (train -> predict -> evaluate)"),
}


# one example per leaf verb, shown at the end of its --help (a test checks every leaf verb has one)
EXAMPLES: dict[str, str] = {
    "synth": "lesionsynth synth -o synth_out -n 20 --lesions procedural --preview",
    "train": "lesionsynth train --config tiny-cpu -o runs/tiny --threads 2",
    "predict": "lesionsynth predict -i scans/ -o seg/ --vol volumes.csv --qc qc.csv",
    "models": "lesionsynth models",
    "evaluate": "lesionsynth evaluate --truth labelsTs --pred synth=seg/ -o scores/ --label 5",
    "gan train-masks": "lesionsynth gan train-masks --lesions masks_mni/ --config gan-masks-cpu -o runs/mask-gan",
    "gan sample-masks": "lesionsynth gan sample-masks --model runs/mask-gan -o gan_masks/ -n 100",
    "gan train-translator": "lesionsynth gan train-translator --config gan-spade-2d-cpu -o runs/spade",
    "gan build-dataset": "lesionsynth gan build-dataset --translator runs/spade --lesions runs/mask-gan -o db -n 50",
    "gan mask-stats": "lesionsynth gan mask-stats real=masks_mni/ generated=gan_masks/",
    "ldm train-autoencoder": "lesionsynth ldm train-autoencoder --config ldm-lesion-mask --lesions masks/ -o runs/ae",
    "ldm train-diffusion": "lesionsynth ldm train-diffusion --autoencoder runs/ae -o runs/dm",
    "ldm sample": "lesionsynth ldm sample --model runs/dm --condition 0.7 --guidance 3 -n 8 -o samples/",
    "ldm render": "lesionsynth ldm render --model runs/img-dm --labels default -o rendered/",
    "ldm build-dataset": "lesionsynth ldm build-dataset --model runs/dm --image-model runs/img-dm -n 20 -o ldm_db",
    "ldm check-conditioning": "lesionsynth ldm check-conditioning --model runs/dm -o check/ -n 8",
    "demo": "lesionsynth demo -o demo_out --threads 2",
    "experiment run": "lesionsynth experiment run small-data -o experiments/small-data",
}


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the example's line as written and appends each option's default when it has a meaningful
    one that its help text does not already state."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text.lower() and "%(default)" not in text
                and default is not None and not isinstance(default, bool) and default != []
                and default is not argparse.SUPPRESS):
            text += " (default: %(default)s)"
        return text


PATH_ERRORS = (FileExistsError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (``lesionsynth VERB: error: ...``), exit 2, instead of the usage block."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``verb``'s stage module is imported (``None``: every stage; ``""``: none)."""
    parser = OneLineParser(prog="lesionsynth",
                           description="Synthetic, perfectly labelled brain MRI for lesion segmentation.")
    parser.add_argument("--version", action="version", version=f"lesionsynth {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    wanted = VERBS[verb][0] if verb in VERBS else None
    imported: set[str] = set()
    for name, (module, summary) in VERBS.items():
        if module in imported:
            continue
        if verb is None or module == wanted:
            importlib.import_module(module).register(sub)
            imported.add(module)
        else:
            sub.add_parser(name, help=summary)
    _add_common(parser, root=True)
    return parser


def _add_common(parser: argparse.ArgumentParser, root: bool = False, name: str = "") -> None:
    """``-v/--verbose``, ``-q/--quiet`` and ``--threads N`` on this parser and every (nested) verb parser
    (a verb that defines one of them itself keeps its own).

    Only the root parser has defaults: a verb parser's default would overwrite a flag given before the
    verb (``lesionsynth -v synth ...``), as argparse copies the verb's namespace over the root's.
    """
    from lesionsynth.argtypes import positive_int

    parser.formatter_class = HelpFormatter
    if name in EXAMPLES and not parser.epilog:
        parser.epilog = f"example:\n  {EXAMPLES[name]}"
    known = {s for a in parser._actions for s in a.option_strings}
    default = 0 if root else argparse.SUPPRESS
    if "--verbose" not in known:
        parser.add_argument("-v", "--verbose", action="count", default=default, help="more messages (debug)")
        parser.add_argument("-q", "--quiet", action="count", default=default,
                            help="warnings and errors only, no progress bars")
    if "--threads" not in known:
        parser.add_argument("--threads", type=positive_int, default=None if root else argparse.SUPPRESS,
                            help="CPU threads for torch (default: torch's)")
    elif not root:  # a verb's own --threads must not overwrite one given before the verb
        for action in parser._actions:
            if "--threads" in action.option_strings:
                action.default = argparse.SUPPRESS
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for verb, child in action.choices.items():
                _add_common(child, name=f"{name} {verb}".strip())


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # the first verb named (root options before it may take values: ``--threads 2 gan train-masks``)
    verb = next((a for a in argv if a in VERBS), "")
    parser = build_parser(verb)
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    from lesionsynth.log import configure

    configure(getattr(args, "verbose", 0) - getattr(args, "quiet", 0), prog=f"lesionsynth {args.command}")
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"lesionsynth {args.command}: interrupted", file=sys.stderr)
        return 130
    except (LesionsynthError, MemoryError, OSError) as e:
        if os.environ.get("LESIONSYNTH_DEBUG") == "1":
            raise
        message, code = _error_line(e)
        print(f"lesionsynth {args.command}: error: {message}", file=sys.stderr)
        return code


def _error_line(e: BaseException) -> tuple[str, int]:
    """The one-line message and exit code of an error: 2 for the user's, 1 for the machine's."""
    if isinstance(e, LesionsynthError):
        return str(e), e.exit_code
    if isinstance(e, PATH_ERRORS):  # an output or input path the user gave cannot be used: a user error
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        return f"{where}{e.strerror or type(e).__name__}", 2
    return f"{type(e).__name__}: {e}", 1  # the machine's problem (disk full, out of memory)


if __name__ == "__main__":
    sys.exit(main())
