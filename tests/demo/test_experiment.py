"""The experiment runner end to end on tiny data: two arms, a test set, an ensemble, one report."""

from __future__ import annotations

import csv
import shutil

import pytest
import yaml

from lesionsynth.demo.experiment import load_experiment, merge_datasets, run_experiment
from lesionsynth.errors import ConfigError
from lesionsynth.train.toy import toy_config, write_blob_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("exp")
    train = write_blob_dataset(root / "train", n=4, shape=(20, 20, 20), seed=1)
    test = write_blob_dataset(root / "test", n=3, shape=(20, 20, 20), seed=2)
    # a second "modality" of the same subjects for the ensemble (here: a copy)
    shutil.copytree(test / "imagesTr", root / "test_mod2")
    return root, train, test


def test_experiment_runs_end_to_end(tmp_path, data):
    root, train, test = data
    tc = tmp_path / "toy.yaml"
    tc.write_text(yaml.safe_dump(toy_config(train, epochs=1, iterations_per_epoch=4)))
    exp = {
        "name": "tiny",
        "description": "two tiny arms",
        "arms": [
            {"name": "a", "train_config": str(tc)},
            {"name": "b", "train_config": str(tc), "datasets": [str(train), str(train)], "max_cases": [2, 1]},
        ],
        "test_sets": [
            {"name": "mod1", "images": [str(test / "imagesTr")], "truth": str(test / "labelsTr")},
            {"name": "mod2", "images": [str(root / "test_mod2")], "truth": str(test / "labelsTr")},
        ],
        "ensembles": [{"name": "both", "modalities": ["mod1", "mod2"], "truth": str(test / "labelsTr")}],
        "predict": {"tta": False, "device": "cpu"},
    }
    cfg_path = tmp_path / "exp.yaml"
    cfg_path.write_text(yaml.safe_dump(exp))
    out = tmp_path / "out"
    res = run_experiment(cfg_path, out)
    assert res["report"].is_file()
    html = res["report"].read_text()
    for name in ("mod1", "mod2", "both"):
        assert name in html
        with open(out / "evaluation" / name / "per_case.csv") as f:
            rows = list(csv.DictReader(f))
        assert {r["model"] for r in rows} == {"a", "b"} and len(rows) == 6
    # the merged training folder of arm b holds 2 + 1 cases
    assert len(list((out / "arms" / "b_data" / "labelsTr").iterdir())) == 3
    # one ensemble output per subject
    assert len(list((out / "predictions" / "a" / "both").glob("*_lesion.nii.gz"))) == 3
    # re-running reuses the trained arms
    mtime = (out / "arms" / "a" / "checkpoints" / "last.pt").stat().st_mtime_ns
    run_experiment(cfg_path, out)
    assert (out / "arms" / "a" / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime


def test_bad_experiment_configs(tmp_path):
    p = tmp_path / "e.yaml"
    p.write_text("name: x\narms: [{name: a}]\ntest_sets: []\n")
    with pytest.raises(ConfigError, match="exactly one"):
        load_experiment(p)
    p.write_text("name: x\narms: [{name: a, model: m}]\ntest_sets: []\nensembles: [{name: e, modalities: [z], "
                 "truth: t}]\n")
    with pytest.raises(ConfigError, match="unknown test set"):
        load_experiment(p)
    p.write_text("name: x\narms: [{name: a, model: m, colour: red}]\ntest_sets: []\n")
    with pytest.raises(ConfigError, match="colour"):
        load_experiment(p)
    for bad in ("../../x", "/abs", "..", "a/b", "<script>"):  # names are folders under --out
        p.write_text(f"name: x\narms: [{{name: '{bad}', model: m}}]\ntest_sets: []\n")
        with pytest.raises(ConfigError, match="plain name"):
            load_experiment(p)
        p.write_text(f"name: x\narms: [{{name: a, model: m}}]\ntest_sets: [{{name: '{bad}', images: [i], truth: t}}]\n")
        with pytest.raises(ConfigError, match="plain name"):
            load_experiment(p)


def test_merge_rejects_different_labels(tmp_path):
    a = write_blob_dataset(tmp_path / "a", n=1, shape=(12, 12, 12))
    b = write_blob_dataset(tmp_path / "b", n=1, shape=(12, 12, 12), lesion_value=5,
                           labels={"background": 0, "lesion": 5})
    from lesionsynth.errors import InputError

    with pytest.raises(InputError, match="differ"):
        merge_datasets([str(a), str(b)], tmp_path / "m")


def test_shipped_experiment_configs_parse():
    from lesionsynth.config import PACKAGE_CONFIGS

    files = sorted((PACKAGE_CONFIGS / "experiments").glob("*.yaml"))
    assert len(files) >= 2
    for f in files:
        load_experiment(f)


def test_demo_generated_sets_call_the_generators_functions(tmp_path, monkeypatch):
    """`demo --gan-masks/--gan-translator/--ldm-mask/--ldm-image` call the generators' library functions
    (not the CLI) with the given checkpoints."""
    from lesionsynth.demo import run as demo_run
    from lesionsynth.generative.gan import database
    from lesionsynth.generative.ldm import build, models

    calls = []
    monkeypatch.setattr(database, "build_dataset", lambda *a, **k: calls.append(("gan", a, k)))
    monkeypatch.setattr(models, "load_mask_ldm", lambda p, d: ("mask", p))
    monkeypatch.setattr(models, "load_image_ldm", lambda p, d: ("image", p))
    monkeypatch.setattr(models, "check_compatible", lambda *a: calls.append(("compatible", a)))
    monkeypatch.setattr(build, "build_dataset", lambda *a, **k: calls.append(("ldm", a, k)))
    opt = demo_run.DemoOptions(out=tmp_path, gan_masks=tmp_path / "g", gan_translator=tmp_path / "t",
                               ldm_mask=tmp_path / "m", ldm_image=tmp_path / "i")
    demo_run._generated_sets(opt, tmp_path)
    assert [c[0] for c in calls] == ["gan", "compatible", "ldm"]
    _, gan_args, gan_kw = calls[0]
    assert gan_args[0] == tmp_path / "t" and gan_args[1] == tmp_path / "gan_cases" and gan_args[2] == 2
    assert gan_args[3].lesions == str(tmp_path / "g") and str(gan_kw["device"]) == "cpu"
    _, ldm_args, _ = calls[2]
    assert ldm_args[:4] == (("mask", tmp_path / "m"), ("image", tmp_path / "i"), tmp_path / "ldm_cases", 2)
