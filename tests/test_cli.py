"""The top-level command line: verb list, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lesionsynth.cli import VERBS, build_parser, main


def test_every_listed_verb_is_registered_by_its_module():
    full = build_parser(None)
    sub = next(a for a in full._actions if a.dest == "command")
    assert set(sub.choices) == set(VERBS)
    for verb in VERBS:  # the lazy parser of each verb knows the verb for real (it has a handler)
        lazy = build_parser(verb)
        choice = next(a for a in lazy._actions if a.dest == "command").choices[verb]
        assert choice.get_default("func") is not None or choice._subparsers is not None, verb


def test_version_and_help_do_not_import_torch():
    code = ("import sys\nfrom lesionsynth.cli import main\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'monai' not in sys.modules, 'heavy import'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().startswith("lesionsynth ")


def test_unknown_verb_is_one_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bogus"])
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("verb", [["synth", "-n", "1"], ["predict", "-i", "x.nii.gz"],
                                  ["gan", "sample-masks", "--model", "m", "-n", "1"]])
def test_every_verb_refuses_a_bad_device_up_front(verb, tmp_path, capsys):
    rc = main([*verb, "-o", str(tmp_path / "out"), "--device", "bogus"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "device 'bogus': not a device" in err[0]
    assert not (tmp_path / "out").exists()


BAD_ARGS = [
    (["synth", "-n", "1000000000000"], "between 1 and"),
    (["synth", "-n", "1", "--seed", "18446744073709551616"], "seed must be in"),
    (["synth", "-n", "1", "--seed", "-1"], "seed must be in"),
    (["train", "--config", "tiny-cpu", "--set", "optim.lr=nan"], "optim.lr must be a finite number"),
    (["train", "--config", "tiny-cpu", "--set", "loss.dice_weight=inf"], "loss.dice_weight must be a finite"),
    (["train", "--config", "tiny-cpu", "--threads", "-2"], "--threads: must be at least 1"),
    (["train", "--config", "tiny-cpu", "--set", "threads=0"], "threads must be at least 1"),
    (["train", "--config", "tiny-cpu", "--stop-after", "0"], "--stop-after: must be at least 1"),
    (["predict", "-i", "x.nii.gz", "--window", "abc"], "invalid int value"),
    (["gan", "train-masks", "--time-limit", "nan"], "finite number above 0"),
    (["gan", "sample-masks", "--model", "m", "-n", "0"], "between 1 and"),
    (["ldm", "sample", "--model", "m", "-n", "2000000"], "between 1 and"),
    (["demo", "--epochs", "0"], "--epochs: must be at least 1"),
    (["train", "--config", "tiny-cpu", "--epochs", "0"], "--epochs: must be at least 1"),
]


@pytest.mark.parametrize("args,message", BAD_ARGS, ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in
                                                         enumerate(BAD_ARGS)])
def test_bad_arguments_are_one_line_exit_2_and_write_nothing(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    try:
        rc = main([*args, "-o", str(out)])
    except SystemExit as e:
        rc = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert "Traceback" not in err[0] and not out.exists()


def test_synth_accepts_a_training_config_and_uses_its_synth_section(tmp_path, capsys):
    from lesionsynth.synth.generator import load_synth_config
    from lesionsynth.train.config import load_train_config

    assert load_synth_config("tiny-cpu") == load_train_config("tiny-cpu").synth
    # a training config that extends another takes the generator it inherits
    assert load_synth_config("bundled-cpu-stage2") == load_train_config("bundled-cpu-stage2").synth
    bad = tmp_path / "physics-train.yaml"
    bad.write_text("physics: {modalities: [t1w]}\nmodel: {channels: [4, 8], strides: [2]}\n")
    rc = main(["synth", "-n", "1", "-o", str(tmp_path / "o"), "--config", str(bad)])
    assert rc == 2 and "without a 'synth' section" in capsys.readouterr().err


def test_verbosity_flags_on_every_verb_and_library_logging(capsys):
    import logging

    from lesionsynth.log import configure, tqdm

    for verb in VERBS:
        p = build_parser(verb)
        sub = next(a for a in p._actions if a.dest == "command").choices[verb]
        assert {"-v", "-q"} <= {s for a in sub._actions for s in a.option_strings}, verb
    # before or after the verb, at any depth; a verb's default does not overwrite a flag given before it
    for argv, want in ((["-v", "models"], (1, 0)), (["models", "-q"], (0, 1)), (["models"], (0, 0)),
                       (["-q", "ldm", "sample", "--model", "m", "--condition", "1", "-o", "o"], (0, 1)),
                       (["ldm", "sample", "-v", "--model", "m", "--condition", "1", "-o", "o"], (1, 0))):
        args = build_parser(argv[1] if argv[0].startswith("-") else argv[0]).parse_args(argv)
        assert (args.verbose, args.quiet) == want, argv
    configure(-1, prog="lesionsynth x")
    assert tqdm(range(3)).disable
    logging.getLogger("lesionsynth.evaluate.api").info("hidden")
    logging.getLogger("lesionsynth.evaluate.api").warning("shown")
    configure(0, prog="lesionsynth x")
    logging.getLogger("lesionsynth.infer").info("note")
    assert capsys.readouterr().err.splitlines() == ["lesionsynth x: warning: shown", "lesionsynth x: note"]


def test_shipped_generator_configs_name_no_data_folder():
    """GAN and LDM configs must run for a user without this project's ../shared data: data comes from
    command-line flags (values only are checked; comments may say what a benchmark used)."""
    import yaml

    from lesionsynth.config import PACKAGE_CONFIGS

    def values(node):
        if isinstance(node, dict):
            for v in node.values():
                yield from values(v)
        elif isinstance(node, list):
            for v in node:
                yield from values(v)
        else:
            yield node

    names = sorted(PACKAGE_CONFIGS.glob("gan-*.yaml")) + sorted(PACKAGE_CONFIGS.glob("ldm-*.yaml"))
    generators = sorted(PACKAGE_CONFIGS.glob("generator-*.yaml"))
    assert len(names) >= 8 and generators
    names += generators
    from lesionsynth.synth import load_synth_config

    for path in generators:  # generator-only: SynthConfig keys, loadable by `synth --config NAME`
        load_synth_config(path.stem)
    for path in names:
        bad = [v for v in values(yaml.safe_load(path.read_text())) if isinstance(v, str) and "shared" in v]
        assert not bad, (path.name, bad)


def test_every_config_verb_takes_set():
    from lesionsynth.cli import build_parser

    for argv in (["synth"], ["train"], ["gan", "train-masks"], ["gan", "train-translator"],
                 ["gan", "build-dataset"], ["ldm", "train-autoencoder"], ["ldm", "train-diffusion"]):
        parser = build_parser(argv[0])
        sub = parser._subparsers._group_actions[0].choices[argv[0]]
        if len(argv) > 1:
            sub = sub._subparsers._group_actions[0].choices[argv[1]]
        assert any("--set" in a.option_strings for a in sub._actions), argv


def _leaf_parsers(parser, name=""):
    subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
    if not subs:
        yield name, parser
    for action in subs:
        for verb, child in action.choices.items():
            yield from _leaf_parsers(child, f"{name} {verb}".strip())


def test_every_verb_takes_threads_and_main_applies_it(capsys):
    import torch

    from lesionsynth.cli import main

    leaves = dict(_leaf_parsers(build_parser(None)))
    assert {"synth", "train", "predict", "evaluate", "gan train-masks", "ldm sample", "experiment run"} <= set(leaves)
    for name, p in leaves.items():
        assert "--threads" in {s for a in p._actions for s in a.option_strings}, name
    before = torch.get_num_threads()
    try:
        assert main(["models", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
        torch.set_num_threads(before)
        # before the verb, also for nested verbs (the value "1" is not taken for the verb)
        args = build_parser("gan").parse_args(["--threads", "1", "gan", "train-masks", "-i", "m", "-o", "o"])
        assert args.threads == 1 and args.command == "gan"
        assert main(["--threads", "1", "models"]) == 0 and torch.get_num_threads() == 1
        assert main(["models", "--threads", "0"]) == 2  # argparse: one line, exit 2
    except SystemExit as e:
        assert e.code == 2
    finally:
        torch.set_num_threads(before)
    capsys.readouterr()


def test_ldm_training_seed_flag_overrides_the_config_seed():
    from lesionsynth.generative.ldm.cli import _overrides

    args = build_parser("ldm").parse_args(["ldm", "train-autoencoder", "--config", "ldm-tiny-cpu", "-o", "x",
                                           "--seed", "7", "--set", "iterations=3"])
    assert _overrides(args) == {"iterations": 3, "seed": 7}
    args = build_parser("ldm").parse_args(["ldm", "train-diffusion", "--autoencoder", "a", "-o", "x"])
    assert _overrides(args) == {}


def test_every_verb_help_shows_an_example_and_defaults():
    leaves = dict(_leaf_parsers(build_parser(None)))
    for name, p in leaves.items():
        text = p.format_help()
        assert f"example:\n  lesionsynth {name}" in text, name
    assert "(default: 0.5)" in leaves["predict"].format_help()  # --overlap: default appended
    assert "(default: auto)" in leaves["ldm sample"].format_help()


def test_input_flag_names_each_verbs_one_input():
    cases = {("synth", "-i", "maps/", "-o", "o", "-n", "1"): ("labels", ["maps/"]),
             ("gan", "train-masks", "-i", "m/", "-o", "o"): ("lesions", Path("m/")),
             ("gan", "train-translator", "--input", "mni", "-o", "o"): ("pairs", "mni"),
             ("ldm", "render", "--model", "r", "-i", "default", "-o", "o"): ("labels", "default"),
             ("predict", "-i", "a.nii.gz", "-o", "o"): ("input", ["a.nii.gz"])}
    for argv, (dest, want) in cases.items():
        assert getattr(build_parser(argv[0]).parse_args(list(argv)), dest) == want, argv


def test_threads_before_the_verb_reaches_verbs_with_their_own_flag_and_zero_defaults_show():
    for verb, rest in (("train", ["-o", "x"]), ("predict", ["-i", "a", "-o", "b"]), ("synth", ["-o", "s", "-n", "1"])):
        assert build_parser(verb).parse_args(["--threads", "3", verb, *rest]).threads == 3, verb
        assert build_parser(verb).parse_args([verb, *rest]).threads is None, verb
    text = " ".join(dict(_leaf_parsers(build_parser("synth")))["synth"].format_help().split())
    assert "(default: 0)" in text  # --seed


def test_ldm_build_dataset_checks_its_default_condition_range():
    from lesionsynth.generative.ldm.cli import _check_common

    args = build_parser("ldm").parse_args(["ldm", "build-dataset", "--model", "m", "--image-model", "i", "-n", "2",
                                           "-o", "x"])
    _check_common(args)  # the default (0, 1) is a tuple: checked, not a crash
    args = build_parser("ldm").parse_args(["ldm", "build-dataset", "--model", "m", "--image-model", "i", "-n", "2",
                                           "-o", "x", "--condition-range", "0", "nan"])
    with pytest.raises(Exception, match="condition-range: not a finite number"):
        _check_common(args)
