"""Training configs: shipped configs load, bad configs give one clear error."""

from __future__ import annotations

import subprocess
import sys

import pytest

from lesionsynth.config import PACKAGE_CONFIGS
from lesionsynth.errors import ConfigError
from lesionsynth.train.config import TrainConfig, config_from_dict, load_train_config
from lesionsynth.train.toy import toy_config, write_blob_dataset


@pytest.fixture
def blobs(tmp_path):
    return write_blob_dataset(tmp_path / "blobs", n=2, shape=(16, 16, 16))


@pytest.mark.parametrize("name", ["synth", "synth-only", "tiny-cpu"])
def test_shipped_synthetic_configs_load(name):
    cfg = load_train_config(name)
    assert isinstance(cfg, TrainConfig)
    assert cfg.synth is not None
    assert cfg.model.out_channels == 6  # the tissue schema: 6 classes
    assert cfg.label_schema().lesion == "lesion"


def test_paper_configuration_values():
    cfg = load_train_config("synth")
    assert tuple(cfg.model.channels) == (32, 64, 128, 256, 320, 320)
    assert cfg.model.dropout == 0.2 and cfg.model.num_res_units == 1
    assert (cfg.epochs, cfg.iterations_per_epoch, cfg.batch_size) == (1200, 500, 1)
    assert cfg.optim.lr == 1e-4 and cfg.optim.grad_clip == 12.0 and cfg.optim.poly_power == 0.9
    assert cfg.real is None and tuple(cfg.mix) == (1, 1)


def test_baseline_needs_a_real_dataset(blobs):
    with pytest.raises(ConfigError, match="real.path"):
        load_train_config("baseline")
    cfg = load_train_config("baseline", {"real": {"path": str(blobs)}})
    assert cfg.label_schema().classes == ("background", "lesion")
    assert cfg.model.out_channels == 2 and cfg.synth is None


def test_synth_config_takes_a_real_dataset_by_override(blobs):
    cfg = load_train_config("synth", {"real": {"path": str(blobs)}})
    assert cfg.real is not None and cfg.real.path == str(blobs)
    assert cfg.real.augment is not None  # the real-image chain is on by default


@pytest.mark.parametrize("change, key", [
    ({"epochs": 0}, "epochs"),
    ({"bogus": 1}, "bogus"),
    ({"model": {"chanels": [4, 8]}}, "chanels"),
    ({"crop_size": [18, 16, 16]}, "crop_size"),
    ({"mix": [0, 0]}, "mix"),
    ({"amp": "fp8"}, "amp"),
    ({"optim": {"lr": -1.0}}, "optim.lr"),
    ({"lesion_crop_prob": 2.0}, "lesion_crop_prob"),
    ({"real": None}, "no training data"),
    ({"schema": "no-such-schema"}, "no-such-schema"),
    ({"val": {"synthetic_cases": 3}}, "synth"),
    ({"device": "tpu"}, "device"),
    ({"synth_crop_size": [8, 16, 16]}, "synth_crop_size"),
    ({"synth_repeats": 0}, "synth_repeats"),
    ({"loss": {"class_weights": [1.0]}}, "loss.class_weights"),
])
def test_bad_configs_name_the_problem(blobs, change, key):
    data = toy_config(blobs)
    data.update(change)
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    msg = str(e.value)
    assert key in msg and "\n" not in msg


def test_cli_bad_config_is_one_line_exit_2(tmp_path, blobs):
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"real: {{path: {blobs}}}\nepochs: 2\nlearning_rate: 0.1\n")
    r = subprocess.run([sys.executable, "-m", "lesionsynth", "train", "--config", str(bad), "--out",
                        str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "learning_rate" in lines[0] and str(bad) in lines[0]
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_cli_set_overrides(blobs):
    from argparse import Namespace

    from lesionsynth.config import parse_set
    from lesionsynth.train.cli import resolve_config

    assert parse_set(["a.b=1", "c=[1, 2]", "d=null", "e=5e-3", "f=abc"]) == {
        "a": {"b": 1}, "c": [1, 2], "d": None, "e": 0.005, "f": "abc"}
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["novalue"])
    args = Namespace(config="tiny-cpu", out="x", resume=False, device=None, epochs=3,
                     iterations_per_epoch=None, seed=None, num_workers=None, threads=None,
                     checkpoint_every=None,
                     set=["val.every_epochs=2", f"real.path={blobs}"])
    cfg = resolve_config(args)
    assert cfg.epochs == 3 and cfg.val.every_epochs == 2 and cfg.real.path == str(blobs)


def test_configs_folder_has_the_four_training_configs():
    for name in ("synth", "baseline", "synth-only", "tiny-cpu"):
        assert (PACKAGE_CONFIGS / f"{name}.yaml").is_file()
