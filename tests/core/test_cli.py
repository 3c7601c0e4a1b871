"""The top-level command line: verb list, lazy imports."""

from __future__ import annotations

import subprocess
import sys

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
