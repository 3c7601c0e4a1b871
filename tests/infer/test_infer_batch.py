"""Many inputs: bad ones give one line and are skipped, the rest is done, re-runs skip finished work."""

from __future__ import annotations

import csv
import gzip

import nibabel as nib
import numpy as np
import pytest
from test_infer_toys import (
    LESION,
    RAW,
    BrightLesionNet,
    make_affine,
    tiny_unet,
    toy_scan,
)

from lesionsynth.cli import main
from lesionsynth.infer import PredictConfig, predict_files
from lesionsynth.infer.files import unique_stems
from lesionsynth.labels import TISSUE
from lesionsynth.models import model_state, save_checkpoint

SHAPE = (20, 24, 18)


@pytest.fixture
def batch(tmp_path):
    """A folder with two good scans and four bad files, and a checkpoint."""
    d = tmp_path / "scans"
    d.mkdir()
    A = make_affine(SHAPE, spacing=2.0)
    for i in range(2):
        img, _ = toy_scan(A, SHAPE, noise=0.01, seed=i)
        nib.save(nib.Nifti1Image(img, A), str(d / f"good_{i}.nii.gz"))
    (d / "corrupt.nii.gz").write_bytes(gzip.compress(b"this is not a nifti file" * 10))
    nan = toy_scan(A, SHAPE)[0]
    nan[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(nan, A), str(d / "has_nan.nii.gz"))
    nib.save(nib.Nifti1Image(np.zeros((20, 24), np.float32), np.eye(4)), str(d / "flat_2d.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt",
                           model_state(model, cfg, TISSUE, {"spacing": 2.0, "normalisation": "zscore"}))
    return d, ckpt.parent.parent


def run_cli(capsys, *argv):
    rc = main(["predict", *map(str, argv)])
    err = capsys.readouterr().err
    return rc, [line for line in err.splitlines() if line.strip()]


def test_bad_inputs_are_reported_in_one_line_each_and_the_batch_goes_on(batch, tmp_path, capsys):
    scans, run_dir = batch
    out = tmp_path / "out"
    missing = scans / "missing.nii.gz"
    rc, lines = run_cli(capsys, "-i", scans, missing, str(tmp_path / "nothing_*.nii"), "-o", out,
                        "--model", run_dir, "--device", "cpu", "--fast")
    assert rc == 1
    skipped = [line for line in lines if line.startswith("lesionsynth predict: error: skipped")]
    assert len(skipped) == 5, lines
    for name in ("corrupt.nii.gz", "has_nan.nii.gz", "flat_2d.nii.gz", "missing.nii.gz", "nothing_*.nii"):
        assert sum(name in line for line in skipped) == 1, (name, skipped)
    assert not any("Traceback" in line for line in lines)
    assert "2 done, 0 already done (skipped), 5 failed" in lines[-1]
    rows = list(csv.DictReader(open(out / "volumes.csv")))
    assert sorted(r["stem"] for r in rows) == ["good_0", "good_1"]
    assert {"grey_matter_ml", "white_matter_ml", "lesion_ml", "lesion_count"} <= set(rows[0])
    for stem in ("good_0", "good_1"):
        assert (out / f"{stem}_labels.nii.gz").is_file() and (out / f"{stem}_qc.png").is_file()
    assert not list(out.glob(".*tmp*"))  # no half-written files left behind


def test_quiet_still_names_each_failed_input_and_its_reason(batch, tmp_path, capsys):
    """``-q`` silences progress and information, not the reason an input was skipped (it used to)."""
    scans, run_dir = batch
    rc, lines = run_cli(capsys, "-i", scans / "has_nan.nii.gz", scans / "good_0.nii.gz", "-o", tmp_path / "out",
                        "--model", run_dir, "--device", "cpu", "--fast", "-q")
    assert rc == 1
    failed = [line for line in lines if "has_nan.nii.gz" in line]
    assert len(failed) == 1 and "NaN" in failed[0], lines
    assert not any("good_0" in line for line in lines), lines


def test_rerun_skips_finished_outputs_and_exit_code_is_zero_without_failures(batch, tmp_path, capsys):
    scans, run_dir = batch
    out = tmp_path / "out"
    good = [scans / "good_0.nii.gz", scans / "good_1.nii.gz"]
    rc, _ = run_cli(capsys, "-i", *good, "-o", out, "--model", run_dir, "--device", "cpu", "--fast")
    assert rc == 0
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    (out / "good_1_qc.png").unlink()  # an unfinished input is redone
    rc, lines = run_cli(capsys, "-i", *good, "-o", out, "--model", run_dir, "--device", "cpu", "--fast")
    assert rc == 0
    assert "1 done, 1 already done (skipped), 0 failed" in lines[-1]
    assert (out / "good_0_labels.nii.gz").stat().st_mtime_ns == mtimes["good_0_labels.nii.gz"]
    assert (out / "good_1_labels.nii.gz").stat().st_mtime_ns != mtimes["good_1_labels.nii.gz"]
    rows = list(csv.DictReader(open(out / "volumes.csv")))
    assert sorted(r["stem"] for r in rows) == ["good_0", "good_1"]  # merged, not duplicated
    # with TTA an uncertainty map is expected too: the same inputs are not "finished" yet
    rc, lines = run_cli(capsys, "-i", *good, "-o", out, "--model", run_dir, "--device", "cpu")
    assert "2 done" in lines[-1] and (out / "good_0_uncertainty.nii.gz").is_file()


def test_user_errors_exit_2_with_one_line(batch, tmp_path, capsys):
    scans, run_dir = batch
    rc, lines = run_cli(capsys, "-i", tmp_path / "none_*.nii.gz", "-o", tmp_path / "o", "--model", run_dir)
    assert rc == 2 and lines[-1].startswith("lesionsynth predict: error: no input images found")
    rc, lines = run_cli(capsys, "-i", scans, "-o", tmp_path / "o", "--model", tmp_path / "no_model")
    assert rc == 2 and len(lines) == 1 and "no_model" in lines[0]
    rc, lines = run_cli(capsys, "-i", scans, "-o", tmp_path / "o", "--model", run_dir, "--overlap", "1.5")
    assert rc == 2 and len(lines) == 1 and "overlap" in lines[0]


def test_same_file_names_in_different_folders_get_distinct_outputs(tmp_path):
    paths = [tmp_path / "subj01" / "flair.nii.gz", tmp_path / "subj02" / "flair.nii.gz",
             tmp_path / "subj02" / "t1.nii.gz"]
    assert unique_stems(paths) == ["subj01_flair", "subj02_flair", "t1"]


def test_volumes_csv_counts_lesions_and_volumes(tmp_path):
    A = make_affine((28, 30, 24), spacing=1.5)
    lesions = (LESION, ((-7.0, 6.0, -4.0), 4.0))
    img, truth = toy_scan(A, (28, 30, 24), lesions=lesions)
    nib.save(nib.Nifti1Image(img, A), str(tmp_path / "two_lesions.nii.gz"))
    net = BrightLesionNet()
    results, failures = predict_files([tmp_path / "two_lesions.nii.gz"], tmp_path / "out", net,
                                      config=PredictConfig(save_probabilities=True), preprocessing=RAW,
                                      progress=False)
    assert not failures and results[0].status == "done"
    row = results[0].row
    lesion = np.asarray(nib.load(str(tmp_path / "out" / "two_lesions_lesion.nii.gz")).dataobj)
    assert row["lesion_count"] == "2"
    assert float(row["lesion_ml"]) == pytest.approx(lesion.sum() * 1.5 ** 3 / 1000, abs=1e-3)
    assert float(row["lesion_ml"]) == pytest.approx(truth.sum() * 1.5 ** 3 / 1000, rel=0.15)
    probs = nib.load(str(tmp_path / "out" / "two_lesions_probabilities.nii.gz"))
    assert probs.shape == (28, 30, 24, 6)


def test_bids_dataset_and_path_lists_as_inputs(tmp_path):
    """A BIDS tree keeps its sub-/ses-/datatype layout in the outputs; --ensemble makes one subject
    session one output; a .txt list names files relative to itself."""
    from lesionsynth.infer.files import expand_inputs, group_subjects

    bids = tmp_path / "bids"
    (bids / "dataset_description.json").parent.mkdir(parents=True)
    (bids / "dataset_description.json").write_text('{"Name": "x", "BIDSVersion": "1.8.0"}')
    names = ["sub-01/anat/sub-01_T1w.nii.gz", "sub-01/anat/sub-01_FLAIR.nii.gz",
             "sub-02/ses-1/anat/sub-02_ses-1_T2w.nii.gz", "sub-02/ses-1/dwi/sub-02_ses-1_trace.nii.gz",
             "derivatives/x/sub-01/anat/sub-01_T1w.nii.gz"]
    for n in names:
        (bids / n).parent.mkdir(parents=True, exist_ok=True)
        (bids / n).write_bytes(b"")
    files, failures = expand_inputs([bids])
    assert not failures and [str(f.relative_to(bids)) for f in files] == sorted(names[:4])
    stems = [s for s, _ in group_subjects(files, ensemble=False)]
    assert stems == ["sub-01/anat/sub-01_FLAIR", "sub-01/anat/sub-01_T1w", "sub-02/ses-1/anat/sub-02_ses-1_T2w",
                     "sub-02/ses-1/dwi/sub-02_ses-1_trace"]
    ens = group_subjects(files, ensemble=True)
    assert [(s, len(g)) for s, g in ens] == [("sub-01/sub-01", 2), ("sub-02/ses-1/sub-02_ses-1", 2)]
    lst = tmp_path / "scans.txt"
    lst.write_text("# my scans\nbids/sub-01/anat/sub-01_T1w.nii.gz\n\n" + str(bids / names[2]) + "\n")
    files, failures = expand_inputs([lst])
    assert files == [bids / names[0], bids / names[2]] and not failures


def test_bids_outputs_land_in_subject_folders(tmp_path):
    A = make_affine((20, 20, 20), spacing=2.0)
    anat = tmp_path / "bids" / "sub-07" / "anat"
    anat.mkdir(parents=True)
    img, _ = toy_scan(A, (20, 20, 20), "t1")
    nib.save(nib.Nifti1Image(img, A), str(anat / "sub-07_T1w.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "-i", str(tmp_path / "bids"), "-o", str(out), "--model", str(ckpt), "--device", "cpu",
               "--fast"])
    assert rc == 0
    assert (out / "sub-07" / "anat" / "sub-07_T1w_labels.nii.gz").is_file()
    assert "sub-07/anat/sub-07_T1w" in (out / "volumes.csv").read_text()


def test_synthseg_style_flags_vol_and_qc(tmp_path):
    """--i/--o/--cpu/--threads as SynthSeg users type them; --vol and --qc write their tables."""
    A = make_affine((20, 20, 20), spacing=2.0)
    img, _ = toy_scan(A, (20, 20, 20), "t1")
    scan = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(img, A), str(scan))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "--i", str(scan), "--o", str(out), "--model", str(ckpt), "--cpu", "--threads", "1",
               "--vol", str(tmp_path / "vol.csv"), "--qc", str(tmp_path / "qc.csv")])
    assert rc == 0
    vol = list(csv.DictReader(open(tmp_path / "vol.csv")))
    qc = list(csv.DictReader(open(tmp_path / "qc.csv")))
    assert vol[0]["stem"] == "scan" and "lesion_ml" in vol[0]
    assert list(qc[0]) == ["stem", "input", "qc"] and 0.0 <= float(qc[0]["qc"]) <= 1.0
    assert main(["predict", "-i", str(scan), "-o", str(out), "--model", str(ckpt), "--fast",
                 "--qc", str(tmp_path / "q2.csv")]) == 2


def test_a_file_name_that_is_not_utf8_does_not_abort_the_batch(tmp_path):
    A = make_affine((20, 20, 20), spacing=2.0)
    img, _ = toy_scan(A, (20, 20, 20), "t1")
    odd = tmp_path / b"caf\xe9.nii.gz".decode("utf-8", "surrogateescape")
    nib.save(nib.Nifti1Image(img, A), str(odd))
    nib.save(nib.Nifti1Image(img, A), str(tmp_path / "ok.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "-i", str(odd), str(tmp_path / "ok.nii.gz"), "-o", str(out), "--model", str(ckpt),
               "--fast"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*_labels.nii.gz")) == ["caf\ufffd_labels.nii.gz", "ok_labels.nii.gz"]


def test_parts_split_a_batch_without_overlap_and_merge_their_tables(tmp_path):
    """--part I --num-parts N: every N-th scan from the I-th; together the parts do every scan once."""
    A = make_affine((20, 20, 20), spacing=2.0)
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(5):
        img, _ = toy_scan(A, (20, 20, 20), "t1")
        nib.save(nib.Nifti1Image(img, A), str(scans / f"s{i}.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    done = []
    for part in (0, 1):
        res, fails = predict_files(scans, out, str(ckpt), config=PredictConfig(fast=True), part=part,
                                   num_parts=2, progress=False)
        assert not fails
        done.append(sorted(r.stem for r in res))
    assert done == [["s0", "s2", "s4"], ["s1", "s3"]]
    stems = [r["stem"] for r in csv.DictReader(open(out / "volumes.csv"))]
    assert sorted(stems) == ["s0", "s1", "s2", "s3", "s4"]
    assert main(["predict", "-i", str(scans), "-o", str(out), "--part", "2", "--num-parts", "2"]) == 2
