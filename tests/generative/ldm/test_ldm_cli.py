"""``lesionsynth ldm`` end to end at tiny size: both LDMs, sample, check-conditioning, render, build-dataset."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import yaml

from conftest import save_nifti, tiny_tissue_probs
from lesionsynth.cli import main
from lesionsynth.config import load_config, to_dict
from lesionsynth.data import read_dataset, write_case, write_dataset_json
from lesionsynth.generative.ldm import LDMConfig
from lesionsynth.io import load_volume
from lesionsynth.labels import TISSUE

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = -31.0


def _spheres(shape, centres_radii):
    g = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"))
    out = np.zeros(shape, bool)
    for c, r in centres_radii:
        out |= ((g - np.asarray(c)[:, None, None, None]) ** 2).sum(0) <= r * r
    return out


def _write_cfg(path, overrides):
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides=overrides)
    path.write_text(yaml.safe_dump(to_dict(cfg)))
    return str(path)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Train a tiny mask LDM and a tiny SPADE image LDM through the CLI (once for this module)."""
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("ldm_cli")
    tissue = tiny_tissue_probs().argmax(0)  # (32, 32, 32) tissue classes 0..4
    labels = save_nifti(d / "brain.nii.gz", tissue.astype(np.int16), AFFINE)
    les_dir = d / "lesions"
    les_dir.mkdir()
    for i, r in enumerate([2, 3, 4, 5]):
        save_nifti(les_dir / f"l{i}.nii.gz", _spheres(tissue.shape, [((12 + i, 16, 17), r)]).astype(np.float32),
                   AFFINE)
    # image dataset: (image, tissue map with a lesion) pairs, intensity by class plus noise
    ds = d / "pairs"
    rng = np.random.default_rng(0)
    means = np.array([0.0, 0.6, 0.9, 0.75, 0.2, 0.4])
    for i in range(4):
        lab = tissue.copy()
        lab[_spheres(tissue.shape, [((14 + 2 * i, 15, 18), 2 + i)]) & (lab > 0)] = TISSUE.lesion_index
        img = means[lab] + 0.03 * rng.standard_normal(lab.shape)
        write_case(ds, f"p{i}", [img.astype(np.float32)], lab, AFFINE)
    write_dataset_json(ds, ["t1"], {n: i for i, n in enumerate(TISSUE.classes)}, 4)
    train = {"iterations": 10, "checkpoint_every": 5, "log_every": 1}
    mask_cfg = _write_cfg(d / "mask.yaml", {
        "data": {"labels": str(labels), "mapping": "identity", "lesions": str(les_dir)},
        "autoencoder": {"train": train}, "diffusion": {"train": train}})
    image_cfg = _write_cfg(d / "image.yaml", {
        "kind": "image", "data": {"labels": None, "dataset": str(ds)},
        "autoencoder": {"train": train}, "diffusion": {"train": train}})
    for cfg, name in ((mask_cfg, "mask"), (image_cfg, "image")):
        assert main(["ldm", "train-autoencoder", "--config", cfg, "--out", str(d / f"{name}_ae"),
                     "--device", "cpu"]) == 0
        assert main(["ldm", "train-diffusion", "--autoencoder", str(d / f"{name}_ae"), "--out",
                     str(d / f"{name}_dm"), "--device", "cpu"]) == 0
    return d


def test_sample_writes_maps_images_table_and_grid(runs, tmp_path):
    out = tmp_path / "s"
    rc = main(["ldm", "sample", "--model", str(runs / "mask_dm"), "--condition", "0.5", "--n", "3", "--guidance",
               "2", "--steps", "2", "--out", str(out), "--image-model", str(runs / "image_dm"), "--device", "cpu"])
    assert rc == 0
    for i in range(3):
        m = load_volume(out / f"mask_{i:04d}.nii.gz")
        assert m.shape == (20, 20, 20) and m.data.max() < TISSUE.num_classes
        assert load_volume(out / f"image_{i:04d}.nii.gz").shape == (20, 20, 20)
        np.testing.assert_allclose(m.affine[:3, 3], [-19.0, -19.0, -19.0])
    rows = (out / "samples.csv").read_text().splitlines()
    assert rows[0].startswith("index,seed,condition,guidance,ratio") and len(rows) == 4
    assert (out / "samples.png").stat().st_size > 1000


def test_check_conditioning_outputs(runs, tmp_path):
    out = tmp_path / "cc"
    rc = main(["ldm", "check-conditioning", "--model", str(runs / "mask_dm"), "--out", str(out),
               "--conditions", "0", "1", "--guidance", "1", "3", "--n", "2", "--steps", "2", "--device", "cpu"])
    assert rc == 0
    summary = json.loads((out / "conditioning.json").read_text())
    assert set(summary["per_guidance"]) == {"1.0", "3.0"}
    assert len(summary["cells"]) == 4
    csv_rows = (out / "conditioning.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 2 * 2 * 2
    md = (out / "conditioning.md").read_text()
    assert "Pearson" in md and "| 3 | 1.00 |" in md
    assert (out / "conditioning.png").stat().st_size > 1000


def test_build_dataset_and_resume(runs, tmp_path):
    out = tmp_path / "ds"
    args = ["ldm", "build-dataset", "--model", str(runs / "mask_dm"), "--image-model", str(runs / "image_dm"),
            "--condition-range", "0.2", "0.8", "--n", "3", "--steps", "2", "--batch-size", "2", "--out", str(out),
            "--device", "cpu"]
    assert main(args) == 0
    ds = read_dataset(out)
    assert [c.id for c in ds.cases] == ["ldm_00000", "ldm_00001", "ldm_00002"]
    assert ds.labels == {n: i for i, n in enumerate(TISSUE.classes)}
    params = [json.loads((out / "params" / f"{c.id}.json").read_text()) for c in ds.cases]
    assert all(0.2 <= p["condition"] <= 0.8 for p in params)
    assert len({p["condition"] for p in params}) == 3
    # resume: finished cases are kept, a missing one is regenerated identically
    before = {c.id: load_volume(c.label).data for c in ds.cases}
    mtime = os.path.getmtime(ds.cases[0].label)
    os.remove(ds.cases[1].label)
    assert main(args) == 0
    assert os.path.getmtime(ds.cases[0].label) == mtime
    np.testing.assert_array_equal(load_volume(ds.cases[1].label).data, before["ldm_00001"])


def test_render_label_maps(runs, tmp_path):
    out = tmp_path / "r"
    rc = main(["ldm", "render", "--model", str(runs / "image_dm"), "--labels", str(runs / "pairs" / "labelsTr"),
               "--mapping", "identity", "--steps", "2", "--out", str(out), "--device", "cpu"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*_image.nii.gz")) == [f"p{i}_image.nii.gz" for i in range(4)]
    assert (out / "render.png").is_file()


def test_cli_errors_are_one_line(runs, tmp_path, capsys):
    cases = [
        (["ldm", "sample", "--model", str(runs / "mask_ae"), "--condition", "0.5", "--out", str(tmp_path / "a")],
         "autoencoder checkpoint"),
        (["ldm", "sample", "--model", str(runs / "image_dm"), "--condition", "0.5", "--out", str(tmp_path / "b")],
         "is an image LDM"),
        (["ldm", "sample", "--model", str(tmp_path / "missing"), "--condition", "0.5", "--out", str(tmp_path)],
         "model not found"),
        (["ldm", "build-dataset", "--model", str(runs / "mask_dm"), "--image-model", str(runs / "image_dm"),
          "--condition-range", "0.8", "0.2", "--n", "2", "--out", str(tmp_path / "c")], "A <= B"),
        (["ldm", "sample", "--model", str(runs / "mask_dm"), "--condition", "0.5", "--steps", "0",
          "--out", str(tmp_path / "d")], "--steps must be >= 1"),
        (["ldm", "train-autoencoder", "--config", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "e")],
         "config file not found"),
        (["ldm", "train-diffusion", "--autoencoder", str(runs / "mask_ae"), "--out", str(runs / "mask_dm")],
         "already holds a run"),
        # shipped configs name no data folder: the data flag is asked for, and no run folder is left
        (["ldm", "train-autoencoder", "--config", "ldm-lesion-mask", "--out", str(tmp_path / "f")],
         "give --lesions DIR"),
        (["ldm", "train-autoencoder", "--config", "ldm-tiny-cpu", "--set", "grid.spasing=2", "--out",
          str(tmp_path / "g")], "unknown key 'spasing'"),
        (["ldm", "train-diffusion", "--out", str(runs / "mask_dm"), "--resume", "--config", "ldm-tiny-cpu",
          "--set", "seed=3"], "differs from the run's at"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert msg in err and len(err.splitlines()) == 1, err
    for name in "acfg":
        assert not (tmp_path / name).exists(), name


def test_sample_with_a_condition_range_draws_each_maps_condition(runs, tmp_path):
    import csv

    from lesionsynth.generative.ldm.build import case_plan

    out = tmp_path / "r"
    assert main(["ldm", "sample", "--model", str(runs / "mask_dm"), "--condition-range", "0.6", "1.0", "-n", "4",
                 "--steps", "2", "-o", str(out), "--seed", "3", "--device", "cpu"]) == 0
    with open(out / "samples.csv") as f:
        rows = list(csv.DictReader(f))
    got = [float(r["condition"]) for r in rows]
    assert got == pytest.approx([case_plan(3, i, 0.6, 1.0)[0] for i in range(4)])
    assert all(0.6 <= c <= 1.0 for c in got) and len(set(got)) == 4
    with pytest.raises(SystemExit):  # one of --condition / --condition-range, not both
        main(["ldm", "sample", "--model", "m", "--condition", "0.5", "--condition-range", "0", "1", "-o", "x"])


def test_an_ldm_checkpoint_source_renders_build_dataset_cases_on_the_fly(runs, tmp_path):
    """``sources: [{kind: ldm, checkpoint: MASK_RUN, build: {image: IMAGE_RUN, ...}}]`` trains on case k of
    what ``ldm build-dataset`` writes with the same settings and seed, brought onto the training grid."""
    from lesionsynth.train.config import config_from_dict
    from lesionsynth.train.sources import TrainingSources
    from lesionsynth.train.toy import toy_config

    build = {"image": str(runs / "image_dm"), "condition_range": [0.2, 0.8], "steps": 2}
    data = toy_config(runs / "pairs", schema="tissue", real=None, preprocessing={"spacing": 2.0}, seed=3,
                      sources=[{"kind": "ldm", "checkpoint": str(runs / "mask_dm"), "build": build}])
    cfg = config_from_dict(data)
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"))
    b = src.batch(1)
    assert b.synthetic and b.source == "ldm" and b.image.shape == (1, 1, 16, 16, 16) and b.labelled.all()
    assert abs(float(b.image.mean())) < 0.5  # normalised as predict prepares a scan
    k = src.synthetic_count(1, 0) * cfg.batch_size
    assert k == 1
    out = tmp_path / "ds"
    assert main(["ldm", "build-dataset", "--model", str(runs / "mask_dm"), "--image-model", str(runs / "image_dm"),
                 "--condition-range", "0.2", "0.8", "--n", "2", "--steps", "2", "--batch-size", "2",
                 "--seed", "3", "--out", str(out), "--device", "cpu"]) == 0
    image, labels, affine, params = src.generated[0].renderer.render(k, cfg.seed)
    np.testing.assert_array_equal(load_volume(out / "labelsTr" / "ldm_00001.nii.gz").data, labels)
    np.testing.assert_allclose(load_volume(out / "imagesTr" / "ldm_00001_0000.nii.gz").data, image, atol=1e-4)
    written = json.loads((out / "params" / "ldm_00001.json").read_text())
    assert written["condition"] == params["condition"] and 0.2 <= params["condition"] <= 0.8
