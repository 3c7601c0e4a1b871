"""``kill -9`` at random moments of ``predict``: the re-run completes, every output loads,
no temporary file is left, and the outputs equal those of an uninterrupted run."""

from __future__ import annotations

import subprocess

import nibabel as nib
import numpy as np
import pytest
from test_infer_toys import make_affine, tiny_unet, toy_scan

from conftest import ENV, arrays, cmd, kill_during, no_temporaries


@pytest.mark.slow
def test_predict_killed_five_times_then_rerun_completes(tmp_path):
    from lesionsynth.labels import TISSUE
    from lesionsynth.models import model_state, save_checkpoint

    A = make_affine((24, 24, 24), spacing=2.0)
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in range(20):
        img, _ = toy_scan(A, (24, 24, 24), "t1")
        nib.save(nib.Nifti1Image(img * (1 + i / 10), A), str(scans / f"s{i:02d}.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    killed, ref = tmp_path / "killed", tmp_path / "ref"
    args = ["--model", ckpt, "--device", "cpu", "--no-tta"]
    counts = kill_during(cmd("predict", "-i", scans, "-o", killed, *args), killed, "*_labels.nii.gz", kills=5, seed=1)
    assert counts == sorted(set(counts)) and counts[-1] < 20, counts  # five kills, each mid-run after progress
    r = subprocess.run(cmd("predict", "-i", scans, "-o", killed, *args), env=ENV, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert subprocess.run(cmd("predict", "-i", scans, "-o", ref, *args), env=ENV).returncode == 0
    no_temporaries(killed)
    a, b = arrays(killed), arrays(ref)
    assert len(a) == 40 and a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    rows = (killed / "volumes.csv").read_text().splitlines()
    assert len(rows) == 21
