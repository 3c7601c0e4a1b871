"""Database builder and the ``lesionsynth gan`` CLI: folder format, resumability, errors (tiny, CPU)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from lesionsynth.cli import main
from lesionsynth.data import read_dataset
from lesionsynth.errors import InputError
from lesionsynth.generative.gan.database import BuildConfig, build_dataset
from lesionsynth.labels import TISSUE

MASKS_YAML = """
grid: {spacing_mm: 4.0, shape: [16, 16, 16], centre_mm: [0.0, 0.0, 0.0]}
latent_dim: 8
gen_channels: [16, 8, 4]
critic_channels: [4, 8]
n_critic: 1
batch_size: 2
iterations: 2
log_every: 1
sample_every: 2
checkpoint_every: 2
min_volume_ml: 0.0
threshold: 0.3
"""


@pytest.fixture
def soft_labels(tmp_path, tiny_affine):
    """The toy brain as a 4D soft-map file (grey, white, partial volume, CSF)."""
    from conftest import tiny_tissue_probs

    probs = tiny_tissue_probs()[1:]
    p = tmp_path / "healthy.nii.gz"
    nib.save(nib.Nifti1Image(np.moveaxis(probs, 0, -1), tiny_affine), str(p))
    return p


def test_gan_build_dataset_folder_format(translator, soft_labels, lesion_dir, tmp_path):
    out = tmp_path / "db"
    cfg = BuildConfig(labels=str(soft_labels), lesions=str(lesion_dir), previews=1, flip_p=0.0)
    build_dataset(translator, out, 2, cfg, seed=0, progress=False)
    ds = read_dataset(out)
    assert [c.id for c in ds.cases] == ["gan_00000", "gan_00001"]
    assert ds.labels == {c: i for i, c in enumerate(TISSUE.classes)}
    meta = json.loads((out / "dataset.json").read_text())
    assert meta["numTraining"] == 2 and meta["channel_names"] == {"0": "T1"}
    assert meta["lesionsynth"]["generator"] == "gan"
    img = nib.load(str(ds.cases[0].images[0]))
    lab = nib.load(str(ds.cases[0].label))
    assert img.shape == lab.shape == (32, 32, 32)
    assert np.allclose(np.sqrt((img.affine[:3, :3] ** 2).sum(0)), 2.0)
    assert np.allclose(img.affine, lab.affine)
    data = np.asarray(img.dataobj)
    assert data.min() >= 0 and data.max() <= 1 and np.isfinite(data).all()
    lab_data = np.asarray(lab.dataobj)
    assert (lab_data == TISSUE.lesion_index).any()
    assert set(np.unique(lab_data).tolist()) <= set(range(6))
    params = json.loads((out / "params" / "gan_00000.json").read_text())
    assert params["lesion"]["source"] == "folder" and params["lesion_voxels"] > 0
    assert (out / "previews" / "gan_00000.png").is_file() and not (out / "previews" / "gan_00001.png").exists()
    # re-running keeps finished cases, a larger n adds cases, other arguments are refused
    before = ds.cases[0].label.stat().st_mtime_ns
    build_dataset(translator, out, 3, cfg, seed=0, progress=False)
    assert ds.cases[0].label.stat().st_mtime_ns == before
    assert len(read_dataset(out).cases) == 3
    with pytest.raises(InputError, match="other arguments"):
        build_dataset(translator, out, 3, cfg, seed=1, progress=False)


def test_gan_build_dataset_is_reproducible(translator, soft_labels, tmp_path):
    cfg = BuildConfig(labels=str(soft_labels), lesions="procedural", lesion_volume_ml=(2.0, 6.0), previews=0)
    for name in ("a", "b"):
        build_dataset(translator, tmp_path / name, 1, cfg, seed=4, progress=False)
    a = nib.load(str(tmp_path / "a" / "imagesTr" / "gan_00000_0000.nii.gz")).get_fdata()
    b = nib.load(str(tmp_path / "b" / "imagesTr" / "gan_00000_0000.nii.gz")).get_fdata()
    assert np.array_equal(a, b)
    la = np.asarray(nib.load(str(tmp_path / "a" / "labelsTr" / "gan_00000.nii.gz")).dataobj)
    assert (la == TISSUE.lesion_index).any()
    # background/lesion-only labels, to merge with real datasets labelled that way
    cfg.output_labels = "lesion"
    build_dataset(translator, tmp_path / "c", 1, cfg, seed=4, progress=False)
    lc = np.asarray(nib.load(str(tmp_path / "c" / "labelsTr" / "gan_00000.nii.gz")).dataobj)
    assert np.array_equal(lc, (la == TISSUE.lesion_index).astype(lc.dtype))
    assert read_dataset(tmp_path / "c").labels == {"background": 0, "lesion": 1}


def test_gan_cli_end_to_end(translator, soft_labels, lesion_dir, tmp_path, capsys):
    masks_cfg = tmp_path / "masks.yaml"
    masks_cfg.write_text(MASKS_YAML)
    run = tmp_path / "mask-run"
    assert main(["gan", "train-masks", "--lesions", str(lesion_dir), "--config", str(masks_cfg),
                 "--out", str(run), "--device", "cpu"]) == 0
    assert (run / "checkpoints" / "last.pt").is_file() and (run / "samples" / "iter_0000002.png").is_file()
    # a bad override on --resume names the run's recorded config, not a shipped one
    capsys.readouterr()
    assert main(["gan", "train-masks", "--lesions", str(lesion_dir), "--out", str(run), "--resume",
                 "--set", "colour=1", "--device", "cpu"]) == 2
    assert f"{run / 'config.yaml'}: unknown key 'colour'" in capsys.readouterr().err
    # the mask GAN as the builder's lesion source
    db = tmp_path / "db"
    assert main(["gan", "build-dataset", "--translator", str(translator), "--out", str(db), "-n", "1",
                 "--labels", str(soft_labels), "--lesions", str(run), "--device", "cpu"]) == 0
    params = json.loads((db / "params" / "gan_00000.json").read_text())
    assert params["lesion"]["source"] == "mask-gan"
    assert main(["gan", "mask-stats", f"real={lesion_dir}", "--limit", "2"]) == 0
    assert "| real | 2 | volume (ml) |" in capsys.readouterr().out
    assert main(["gan", "train-translator", "--arch", "spade", "--config", str(tmp_path / "translator.yaml"),
                 "--pairs", "/no/such/folder", "--out", str(tmp_path / "x")]) == 2


def test_gan_cli_errors_are_one_line(tmp_path, lesion_dir, capsys):
    assert main(["gan"]) == 2
    assert main(["gan", "train-masks", "--out", str(tmp_path / "r")]) == 2
    assert "--lesions FOLDER is required" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("iteratons: 3\n")
    assert main(["gan", "train-masks", "--lesions", str(lesion_dir), "--config", str(bad),
                 "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown key 'iteratons'" in err and len(err.splitlines()) == 1
    assert main(["gan", "sample-masks", "--model", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
    assert "model not found" in capsys.readouterr().err
    assert main(["gan", "train-masks", "--lesions", str(tmp_path / "missing"), "--out", str(tmp_path / "r"),
                 "--device", "cpu"]) == 2
    assert "lesion folder not found" in capsys.readouterr().err
