"""``kill -9`` at random moments of ``synth`` and ``predict``: the re-run completes, every output loads,
no temporary file is left, and the outputs equal those of an uninterrupted run."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest
from test_synth_cli import CFG, fs_labelmap

from conftest import ENV, arrays, cmd, kill_during, no_temporaries


@pytest.mark.slow
def test_synth_killed_five_times_then_rerun_equals_an_uninterrupted_run(tmp_path, tiny_affine):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(CFG)
    lab = fs_labelmap(tmp_path / "seg.nii.gz", tiny_affine)
    common = ["--n", 150, "--seed", 3, "--labels", lab, "--config", cfg]
    killed = tmp_path / "killed"
    counts = kill_during(cmd("synth", "--out", killed, *common), killed, "labelsTr/*.nii.gz", kills=5, seed=0)
    assert counts == sorted(set(counts)) and counts[-1] < 150, counts  # five kills, each mid-run after progress
    assert subprocess.run(cmd("synth", "--out", killed, *common), env=ENV, capture_output=True).returncode == 0
    ref = tmp_path / "ref"
    assert subprocess.run(cmd("synth", "--out", ref, *common), env=ENV, capture_output=True).returncode == 0
    no_temporaries(killed)
    a, b = arrays(killed), arrays(ref)
    assert len(a) == 300 and a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
