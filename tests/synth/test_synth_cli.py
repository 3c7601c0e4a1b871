"""End to end: ``lesionsynth synth`` on tiny data, its reproducibility, resume and bad inputs."""

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from conftest import save_nifti, tiny_tissue_probs

CFG = """
resolution: null
procedural: {volume_ml: [1.0, 5.0]}
augment:
  spatial: {crop_size: [24, 24, 24], crop_jitter_mm: 2.0}
"""


def fs_labelmap(path, affine):
    """A tiny FreeSurfer-valued label map from the toy tissue probabilities."""
    t = tiny_tissue_probs().argmax(0)
    lut = np.array([0, 3, 2, 3, 24])  # bg, cortex, WM, (PV->cortex), CSF
    d = lut[t].astype(np.float32)
    d[0, 0, :] = 502  # some extra-cerebral label
    return save_nifti(path, d, affine)


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "lesionsynth", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


@pytest.fixture
def setup(tmp_path, tiny_affine):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CFG)
    lab = fs_labelmap(tmp_path / "seg.nii.gz", tiny_affine)
    return tmp_path, cfg, lab


def test_same_seed_same_data(setup):
    tmp, cfg, lab = setup
    for d in ("A", "B"):
        r = run("synth", "--n", 2, "--out", tmp / d, "--seed", 7, "--labels", lab, "--config", cfg, "--preview")
        assert r.returncode == 0, r.stderr
    for i in range(2):
        for sub, name in (("imagesTr", f"case_{i:04d}_0000.nii.gz"), ("labelsTr", f"case_{i:04d}.nii.gz")):
            a = nib.load(str(tmp / "A" / sub / name))
            b = nib.load(str(tmp / "B" / sub / name))
            assert np.array_equal(a.get_fdata(), b.get_fdata())
            assert np.array_equal(a.affine, b.affine)
        lab_i = np.asarray(nib.load(str(tmp / "A" / "labelsTr" / f"case_{i:04d}.nii.gz")).dataobj)
        assert set(np.unique(lab_i)) <= set(range(6)) and (lab_i == 5).any()
        assert (tmp / "A" / "previews" / f"case_{i:04d}.png").stat().st_size > 1000
        assert (tmp / "A" / "params" / f"case_{i:04d}.json").is_file()
    import json

    js = json.loads((tmp / "A" / "dataset.json").read_text())
    assert js["labels"]["lesion"] == 5 and js["numTraining"] == 2


def test_resume_completes_without_rewriting(setup):
    tmp, cfg, lab = setup
    out = tmp / "R"
    assert run("synth", "--n", 3, "--out", out, "--seed", 1, "--labels", lab, "--config", cfg).returncode == 0
    ref = nib.load(str(out / "imagesTr" / "case_0002_0000.nii.gz")).get_fdata()
    (out / "labelsTr" / "case_0002.nii.gz").unlink()  # as if interrupted before the case finished
    mtime0 = (out / "labelsTr" / "case_0000.nii.gz").stat().st_mtime_ns
    r = run("synth", "--n", 3, "--out", out, "--seed", 1, "--labels", lab, "--config", cfg)
    assert r.returncode == 0 and "2 already done" in r.stdout
    assert (out / "labelsTr" / "case_0000.nii.gz").stat().st_mtime_ns == mtime0
    assert np.array_equal(nib.load(str(out / "imagesTr" / "case_0002_0000.nii.gz")).get_fdata(), ref)
    # a file cut short by something other than us (an interrupted copy): that case is redone, not trusted
    img1 = out / "imagesTr" / "case_0001_0000.nii.gz"
    ref1 = nib.load(str(img1)).get_fdata()
    img1.write_bytes(img1.read_bytes()[: img1.stat().st_size // 2])
    r = run("synth", "--n", 3, "--out", out, "--seed", 1, "--labels", lab, "--config", cfg)
    assert r.returncode == 0 and "2 already done" in r.stdout, r.stdout
    assert np.array_equal(nib.load(str(img1)).get_fdata(), ref1)
    r = run("synth", "--n", 3, "--out", out, "--seed", 2, "--labels", lab, "--config", cfg)
    assert r.returncode == 2 and "other arguments" in r.stderr


def _bad(kind, tmp, affine):
    p = tmp / f"{kind}.nii.gz"
    if kind == "missing":
        return tmp / "nope.nii.gz"
    if kind == "corrupt":
        p.write_bytes(b"garbage")
    elif kind == "2d":
        nib.save(nib.Nifti1Image(np.zeros((8, 8), np.float32), affine), str(p))
    elif kind == "nan":
        d = np.zeros((8, 8, 8), np.float32)
        d[2, 2, 2] = np.nan
        nib.save(nib.Nifti1Image(d, affine), str(p))
    elif kind == "unmapped":
        d = np.full((8, 8, 8), 2, np.float32)
        d[3, 3, 3] = 777
        nib.save(nib.Nifti1Image(d, affine), str(p))
    elif kind == "4d":
        nib.save(nib.Nifti1Image(np.full((8, 8, 8, 2), 3, np.float32), affine), str(p))
    return p


@pytest.mark.parametrize("kind", ["missing", "corrupt", "2d", "nan", "unmapped", "4d"])
def test_bad_label_inputs(setup, tiny_affine, kind):
    tmp, cfg, _ = setup
    bad = _bad(kind, tmp, tiny_affine)
    out = tmp / "out"
    r = run("synth", "--n", 1, "--out", out, "--labels", bad, "--config", cfg)
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.strip().splitlines() if ln]
    assert len(lines) == 1 and "Traceback" not in r.stderr and bad.name in lines[0], r.stderr
    assert not (out / "imagesTr").exists()


def test_bad_lesion_inputs(setup, tiny_affine):
    tmp, cfg, lab = setup
    (tmp / "empty").mkdir()
    r = run("synth", "--n", 1, "--out", tmp / "o1", "--labels", lab, "--config", cfg, "--lesions", tmp / "empty")
    assert r.returncode == 2 and "no lesion masks" in r.stderr and "Traceback" not in r.stderr
    far = tmp / "far"
    far.mkdir()
    aff = np.eye(4)
    aff[:3, 3] = 400
    m = np.zeros((6, 6, 6), np.float32)
    m[2:4, 2:4, 2:4] = 1
    nib.save(nib.Nifti1Image(m, aff), str(far / "miss.nii.gz"))
    r = run("synth", "--n", 1, "--out", tmp / "o2", "--labels", lab, "--config", cfg, "--lesions", far)
    assert r.returncode == 2 and "miss.nii.gz" in r.stderr and "does not overlap" in r.stderr
    assert not list((tmp / "o2").glob("imagesTr/*"))


def test_bad_config_names_key(setup):
    tmp, _, lab = setup
    bad = tmp / "bad.yaml"
    bad.write_text("augment: {spatial: {crop_sise: [8, 8, 8]}}\n")
    r = run("synth", "--n", 1, "--out", tmp / "o", "--labels", lab, "--config", bad)
    assert r.returncode == 2 and "crop_sise" in r.stderr and "Traceback" not in r.stderr


def test_set_overrides_config_keys(setup):
    tmp, cfg, lab = setup
    r = run("synth", "--n", 1, "--out", tmp / "o", "--labels", lab, "--config", cfg,
            "--set", "augment.spatial.crop_size=[16, 20, 16]", "-q")
    assert r.returncode == 0, r.stderr
    assert nib.load(str(tmp / "o" / "imagesTr" / "case_0000_0000.nii.gz")).shape == (16, 20, 16)
    r = run("synth", "--n", 1, "--out", tmp / "p", "--labels", lab, "--set", "augment.spatial.crop_sise=3")
    assert r.returncode == 2 and "unknown key 'crop_sise'" in r.stderr and len(r.stderr.splitlines()) == 1
    assert not (tmp / "p").exists()


def test_a_folder_of_another_set_is_refused(setup):
    """Another seed, or a dataset.json that lesionsynth did not write, is never continued or overwritten."""
    tmp, cfg, lab = setup
    assert run("synth", "-n", 1, "-o", tmp / "s", "--seed", 1, "--labels", lab, "--config", cfg).returncode == 0
    r = run("synth", "-n", 1, "-o", tmp / "s", "--seed", 2, "--labels", lab, "--config", cfg)
    assert r.returncode == 2 and "other arguments (seed)" in r.stderr
    (tmp / "nnunet").mkdir()
    (tmp / "nnunet" / "dataset.json").write_text('{"labels": {"background": 0}, "numTraining": 3}')
    r = run("synth", "-n", 1, "-o", tmp / "nnunet", "--labels", lab, "--config", cfg)
    assert r.returncode == 2 and "not lesionsynth" in r.stderr
    assert "lesionsynth" not in (tmp / "nnunet" / "dataset.json").read_text()


def test_synth_parts_write_disjoint_cases_equal_to_one_run(setup):
    tmp, cfg, lab = setup
    for part in (0, 1):
        r = run("synth", "-n", 3, "-o", tmp / "p", "--labels", lab, "--config", cfg, "--part", part,
                "--num-parts", 2)
        assert r.returncode == 0, r.stderr
    assert run("synth", "-n", 3, "-o", tmp / "one", "--labels", lab, "--config", cfg).returncode == 0
    for i in range(3):
        a = np.asarray(nib.load(str(tmp / "p" / "imagesTr" / f"case_{i:04d}_0000.nii.gz")).dataobj)
        b = np.asarray(nib.load(str(tmp / "one" / "imagesTr" / f"case_{i:04d}_0000.nii.gz")).dataobj)
        np.testing.assert_array_equal(a, b)
