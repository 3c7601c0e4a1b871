"""The training loop on tiny CPU problems: learning, checkpoints, validation, run-folder records."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml

import lesionsynth
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.models import load_model
from lesionsynth.train.config import config_from_dict
from lesionsynth.train.loop import train
from lesionsynth.train.toy import toy_config, write_blob_dataset


@pytest.fixture(scope="module")
def blobs(tmp_path_factory):
    return write_blob_dataset(tmp_path_factory.mktemp("data") / "blobs", n=4, shape=(20, 20, 20))


def _rows(run_dir, phase="train"):
    with open(run_dir / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r["phase"] == phase]


def test_loss_falls_on_a_learnable_task(tmp_path, blobs):
    cfg = config_from_dict(toy_config(blobs, epochs=4, iterations_per_epoch=10))
    res = train(cfg, tmp_path / "run", progress_bar=False)
    assert res.iterations == 40
    losses = [float(r["loss"]) for r in _rows(tmp_path / "run")]
    assert len(losses) == 40
    first, last = sum(losses[:8]) / 8, sum(losses[-8:]) / 8
    assert last < 0.75 * first, (first, last)


def test_run_folder_records_config_provenance_and_checkpoint(tmp_path, blobs):
    cfg = config_from_dict(toy_config(blobs, epochs=1, iterations_per_epoch=3, val={"path": str(blobs)}))
    run = tmp_path / "run"
    res = train(cfg, run, progress_bar=False)
    recorded = yaml.safe_load((run / "config.yaml").read_text())
    assert config_from_dict(recorded) == cfg
    info = json.loads((run / "run.json").read_text())["starts"][0]
    assert info["lesionsynth"] == lesionsynth.__version__
    assert info["libraries"]["torch"] and info["libraries"]["monai"]
    assert "git" in info and "argv" in info
    assert (run / "tensorboard").is_dir() and any((run / "tensorboard").iterdir())
    # best and last are loadable inference checkpoints
    for name in ("best", "last"):
        model, mcfg, schema, prep = load_model(run / "checkpoints" / f"{name}.pt")
        assert schema.classes == ("background", "lesion") and prep["spacing"] == 1.0
        assert prep["patch_size"] == [16, 16, 16]
    val = _rows(run, "val")
    assert len(val) == 1 and 0.0 <= float(val[0]["lesion_dice"]) <= 1.0 and val[0]["cases"] == "4"
    assert res.best_dice == pytest.approx(float(val[0]["lesion_dice"]), abs=1e-5)
    assert not list((run / "checkpoints").glob(".*"))  # no temporary files left


def test_existing_run_needs_resume_and_same_config(tmp_path, blobs):
    cfg = config_from_dict(toy_config(blobs, epochs=1, iterations_per_epoch=2))
    train(cfg, tmp_path / "run", progress_bar=False)
    with pytest.raises(InputError, match="already holds a run; add --resume"):
        train(cfg, tmp_path / "run", progress_bar=False)
    other = config_from_dict(toy_config(blobs, epochs=1, iterations_per_epoch=2, seed=5))
    with pytest.raises(ConfigError, match="'seed'"):
        train(other, tmp_path / "run", resume=True, progress_bar=False)
    # runtime keys may change on resume
    threads = config_from_dict(toy_config(blobs, epochs=1, iterations_per_epoch=2, threads=2))
    assert train(threads, tmp_path / "run", resume=True, progress_bar=False).iterations == 2


def test_a_start_that_failed_before_training_can_be_rerun(tmp_path, blobs):
    """A bad real dataset fails the start after the run folder was created: the same command works
    again once the data is fixed (nothing trained there to protect)."""
    import shutil

    from lesionsynth.errors import InputError

    data = tmp_path / "data"
    shutil.copytree(blobs, data)
    good = (data / "dataset.json").read_text()
    (data / "dataset.json").write_text("[1, 2]")
    cfg = config_from_dict(toy_config(data, epochs=1, iterations_per_epoch=2))
    with pytest.raises(InputError, match="dataset.json"):
        train(cfg, tmp_path / "run", progress_bar=False)
    (data / "dataset.json").write_text(good)
    assert train(cfg, tmp_path / "run", progress_bar=False).iterations == 2


def test_synthetic_training_with_synthetic_validation(tmp_path, tiny_labelmap):
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.train.sources import synth_config_for_training

    data = toy_config(None, real=None, schema="tissue", synth={"resolution": None},
                      preprocessing={"spacing": 2.0}, epochs=2, iterations_per_epoch=2,
                      val={"synthetic_cases": 2, "every_epochs": 1})
    cfg = config_from_dict(data)
    gen = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[tiny_labelmap])
    res = train(cfg, tmp_path / "run", progress_bar=False, generator=gen)
    assert res.iterations == 4 and torch.isfinite(torch.tensor(res.last_loss))
    val = _rows(tmp_path / "run", "val")
    assert [int(r["iteration"]) for r in val] == [2, 4]
    # the training generator's own cases never select a checkpoint: one rule for every arm
    assert not (tmp_path / "run" / "checkpoints" / "best.pt").exists()
    assert (tmp_path / "run" / "checkpoints" / "last.pt").is_file()
    _, _, schema, _ = load_model(tmp_path / "run")
    assert schema.num_classes == 6


def test_init_seed_sets_the_initial_weights_apart_from_the_data_stream(tmp_path, blobs):
    def weights(name, **kw):  # one step at a negligible learning rate: the weights stay the initial ones
        cfg = config_from_dict(toy_config(blobs, epochs=1, iterations_per_epoch=1, optim={"lr": 1e-12}, **kw))
        train(cfg, tmp_path / name, progress_bar=False)
        return load_model(tmp_path / name / "checkpoints" / "last.pt")[0].state_dict()

    def same(a, b):
        return all(torch.allclose(a[k].float(), b[k].float(), atol=1e-6) for k in a)

    data0_init1 = weights("a", seed=0, init_seed=1)
    assert same(data0_init1, weights("b", seed=1))
    assert not same(data0_init1, weights("c", seed=0))
    assert config_from_dict(toy_config(blobs, seed=3)).weights_seed == 3
    with pytest.raises(ConfigError, match="init_seed"):
        config_from_dict(toy_config(blobs, init_seed=-1))
