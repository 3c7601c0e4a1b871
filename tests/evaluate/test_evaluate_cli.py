"""End-to-end: the ``lesionsynth evaluate`` command and ``evaluate_folders`` on toy studies."""

from __future__ import annotations

import csv
import math

import nibabel as nib
import numpy as np
import pytest

from lesionsynth.cli import main
from lesionsynth.evaluate import evaluate_folders
from lesionsynth.evaluate import metrics as M
from lesionsynth.evaluate.scoring import paper_grid
from lesionsynth.evaluate.toy import make_toy_study
from lesionsynth.io.nifti import save_volume


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    return make_toy_study(root, n_cases=5, shape=(20, 22, 18), spacing=(2.0, 2.0, 2.5), seed=1)


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _args(truth, preds, out, *extra):
    a = ["evaluate", "--truth", str(truth), "-o", str(out), *extra]
    for name, folder in preds.items():
        a += ["--pred", f"{name}={folder}"]
    return a


def test_cli_writes_every_output(study, tmp_path, capsys):
    truth, preds = study
    out = tmp_path / "out"
    assert main(_args(truth, preds, out)) == 0
    stdout = capsys.readouterr().out
    assert "Baseline: Dice" in stdout and "report:" in stdout
    for name in ("per_case.csv", "summary.csv", "summary.md", "wilcoxon.csv", "dice_categories.csv",
                 "plot_dice.png", "plot_lesion_f1.png", "report.png", "report.html"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    rows = _read_csv(out / "per_case.csv")
    assert len(rows) == 5 * 3
    assert {r["model"] for r in rows} == set(preds)
    # summary.csv means are the means of the per-case values (finite ones)
    summ = {(r["model"], r["metric"]): r for r in _read_csv(out / "summary.csv")}
    for model in preds:
        for metric in ("dice", "hd95_mm", "avd_ml", "ald", "lesion_f1", "dice_grey_matter"):
            v = np.array([float(r[metric]) for r in rows if r["model"] == model])
            assert float(summ[(model, metric)]["mean"]) == pytest.approx(v[np.isfinite(v)].mean())
            assert int(summ[(model, metric)]["failures"]) == int(np.isinf(v).sum())
    # per-case values are the metric functions applied to the files
    r0 = next(r for r in rows if r["model"] == "Synth" and r["case"] == "case_002")
    t = nib.load(str(truth / "case_002.nii.gz"))
    p = nib.load(str(preds["Synth"] / "case_002.nii.gz"))
    tl, pl = np.asarray(t.dataobj) == 5, np.asarray(p.dataobj) == 5
    assert float(r0["dice"]) == pytest.approx(M.dice(tl, pl))
    assert float(r0["hd95_mm"]) == pytest.approx(M.hd95(tl, pl, (2.0, 2.0, 2.5)))
    assert float(r0["lesion_f1"]) == pytest.approx(M.lesion_wise_f1(tl, pl))
    md = (out / "summary.md").read_text()
    assert "**" in md and "Wilcoxon" in md and "Dice ≥ 0.6" in md
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "<b>" in html
    tests = _read_csv(out / "wilcoxon.csv")
    assert len(tests) == 3 * 5  # 3 pairs x 5 lesion metrics
    assert all(t["stars"] in {"ns", "*", "**", "***", "****", "n/a"} for t in tests)


def test_prediction_on_other_grid_is_resampled_through_affines(tmp_path):
    rng = np.random.default_rng(0)
    aff = np.diag([2.0, 2.0, 3.0, 1.0])
    aff[:3, 3] = [-20.0, -22.0, -30.0]
    lab = np.zeros((20, 22, 20), np.uint8)
    lab[5:12, 6:14, 4:9] = 5
    lab[14:17, 3:6, 12:16] = 5
    lab[(lab == 0) & (rng.random(lab.shape) < 0.5)] = 2
    save_volume(tmp_path / "truth" / "c.nii.gz", lab, aff)
    # 1) flipped x axis, with the affine that says so
    flip = aff.copy()
    flip[0, 0] = -2.0
    flip[0, 3] = aff[0, 3] + 2.0 * 19
    save_volume(tmp_path / "flipped" / "c.nii.gz", lab[::-1], flip)
    # 2) a larger array (different shape) with the origin moved so that it covers the same place
    big = np.zeros((26, 22, 24), np.uint8)
    big[3:23, :, 2:22] = lab
    shifted = aff.copy()
    shifted[:3, 3] = aff[:3, 3] - aff[:3, :3] @ np.array([3, 0, 2])
    save_volume(tmp_path / "padded" / "c.nii.gz", big, shifted)
    # 3) twice finer grid
    fine = lab.repeat(2, 0).repeat(2, 1).repeat(2, 2)
    faff = aff.copy()
    faff[:3, :3] /= 2
    faff[:3, 3] = aff[:3, 3] - aff[:3, :3] @ np.array([0.25, 0.25, 0.25])
    save_volume(tmp_path / "fine" / "c.nii.gz", fine, faff)
    # 4) same shape, but the data is shifted by one voxel in world space: must NOT match by shape
    moved = aff.copy()
    moved[0, 3] += 2.0
    save_volume(tmp_path / "moved" / "c.nii.gz", lab, moved)
    models = {k: tmp_path / k for k in ("flipped", "padded", "fine", "moved")}
    res = evaluate_folders(tmp_path / "truth", models, tmp_path / "out", progress=False)
    for k in ("flipped", "padded", "fine"):
        assert res["summary"][k]["dice"] == 1.0, k
        assert res["summary"][k]["hd95_mm"] == 0.0, k
        assert res["summary"][k]["dice_white_matter"] == 1.0, k
    assert res["summary"]["moved"]["dice"] < 1.0
    assert res["summary"]["moved"]["hd95_mm"] == pytest.approx(2.0)


def test_missing_cases_are_reported_and_optionally_scored_empty(study, tmp_path, capsys):
    truth, preds = study
    part = tmp_path / "partial"
    part.mkdir()
    for f in sorted(preds["Synth"].iterdir())[1:]:
        (part / f.name).write_bytes(f.read_bytes())
    (part / "case_999.nii.gz").write_bytes((preds["Synth"] / "case_001.nii.gz").read_bytes())
    out = tmp_path / "skip"
    assert main(_args(truth, {"Synth": part, "Augmented": preds["Augmented"]}, out)) == 0
    err = capsys.readouterr().err
    assert "Synth: 1 truth case(s) without prediction" in err and "case_000" in err
    assert "prediction(s) without truth" in err and "case_999" in err
    md = (out / "summary.md").read_text()
    assert "case_000" in md and "not scored" in md and "case_999" in md
    rows = _read_csv(out / "per_case.csv")
    assert sum(r["model"] == "Synth" for r in rows) == 4
    out2 = tmp_path / "empty"
    assert main(_args(truth, {"Synth": part}, out2, "--missing", "empty")) == 0
    rows = _read_csv(out2 / "per_case.csv")
    r = next(r for r in rows if r["case"] == "case_000")
    assert float(r["dice"]) == 0.0 and math.isinf(float(r["hd95_mm"])) and "missing" in r["note"]
    summ = {(r["model"], r["metric"]): r for r in _read_csv(out2 / "summary.csv")}
    assert int(summ[("Synth", "hd95_mm")]["failures"]) == 1
    assert "(1 failed)" in (out2 / "summary.md").read_text()


def test_binary_files_and_volume_labels(tmp_path):
    aff = np.eye(4)
    t = np.zeros((16, 16, 16), np.uint8)
    t[2:14, 2:14, 2:14] = 2
    t[4:8, 4:8, 4:8] = 4            # "ventricles", 64 voxels
    t[9:12, 9:12, 9:12] = 5         # lesion
    p = t.copy()
    p[4:8, 4:8, 4:9] = 4            # 80 voxels: +16 ul
    save_volume(tmp_path / "truth" / "a.nii.gz", t, aff)
    save_volume(tmp_path / "multi" / "a.nii.gz", p, aff)
    save_volume(tmp_path / "binary" / "a.nii.gz", (t == 5).astype(np.uint8), aff)
    res = evaluate_folders(tmp_path / "truth", {"multi": tmp_path / "multi", "binary": tmp_path / "binary"},
                           tmp_path / "out", volume_labels=[4], progress=False)
    assert res["summary"]["binary"]["dice"] == 1.0     # binary file: value 1 is the lesion
    assert res["summary"]["multi"]["dice"] == 1.0
    assert res["summary"]["multi"]["abs_vol_err_ml_csf"] == pytest.approx(0.016)
    assert res["summary"]["multi"]["vol_err_ml_csf"] == pytest.approx(0.016)
    assert math.isnan(res["summary"]["binary"]["abs_vol_err_ml_csf"])  # no classes in a binary file
    assert res["stats"]["binary"]["dice_white_matter"]["undefined"] == 1


def test_paper_protocol(tmp_path):
    aff, shape = paper_grid(np.diag([2.0, 2.0, 2.0, 1.0]), (32, 40, 30))
    assert shape == (256, 256, 256)
    assert np.allclose(np.sqrt((aff[:3, :3] ** 2).sum(0)), 1.0)
    centre_in = np.diag([2.0, 2.0, 2.0, 1.0]) @ np.array([15.5, 19.5, 14.5, 1.0])
    assert np.allclose(aff @ np.array([127.5, 127.5, 127.5, 1.0]), centre_in, atol=1.0)
    big_aff, big_shape = paper_grid(np.eye(4), (300, 20, 20))
    assert big_shape[0] >= 300  # never crops
    a = np.diag([2.0, 2.0, 2.0, 1.0])
    t = np.zeros((24, 24, 24), np.uint8)
    t[8:14, 8:14, 8:14] = 5
    p = np.zeros_like(t)
    p[9:15, 8:14, 8:14] = 5
    save_volume(tmp_path / "truth" / "a.nii.gz", t, a)
    save_volume(tmp_path / "m" / "a.nii.gz", p, a)
    native = evaluate_folders(tmp_path / "truth", {"m": tmp_path / "m"}, tmp_path / "n", progress=False)
    paper = evaluate_folders(tmp_path / "truth", {"m": tmp_path / "m"}, tmp_path / "p", protocol="paper",
                             progress=False)
    assert native["summary"]["m"]["dice"] == pytest.approx(5 / 6)
    assert native["summary"]["m"]["hd95_mm"] == pytest.approx(2.0)
    # at 1 mm the 12 mm cubes keep their size and offset (2 mm): same Dice, same distance
    assert paper["summary"]["m"]["dice"] == pytest.approx(10 / 12, abs=0.03)
    assert paper["summary"]["m"]["hd95_mm"] == pytest.approx(2.0, abs=1.0)
    assert paper["summary"]["m"]["avd_ml"] == pytest.approx(native["summary"]["m"]["avd_ml"], abs=0.05)


def test_user_errors_exit_2_with_one_line(study, tmp_path, capsys):
    truth, preds = study
    bad = tmp_path / "probs"
    save_volume(bad / "case_000.nii.gz", np.full((20, 22, 18), 0.5, np.float32), np.eye(4), dtype=np.float32)
    cases = [
        (_args(tmp_path / "nope", preds, tmp_path / "o1"), "folder not found"),
        (_args(truth, {"m": bad}, tmp_path / "o2"), "not an integer label map"),
        (["evaluate", "--truth", str(truth), "--pred", "bad name=" + str(bad), "-o", str(tmp_path / "o3")],
         "model name"),
        (_args(truth, {"Synth": preds["Synth"]}, tmp_path / "o4", "--tissue-classes", "a,b"),
         "comma-separated integers"),
    ]
    for argv, msg in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        errors = [x for x in err if "error:" in x]
        assert len(errors) == 1 and msg in errors[0] and "Traceback" not in "\n".join(err), err
    assert not (tmp_path / "o2").exists()  # nothing half-written


def test_workers_give_identical_results(study, tmp_path):
    truth, preds = study
    sel = {"Synth": preds["Synth"]}
    r1 = evaluate_folders(truth, sel, tmp_path / "w1", progress=False)
    r2 = evaluate_folders(truth, sel, tmp_path / "w2", progress=False, workers=2)
    assert (tmp_path / "w1" / "per_case.csv").read_text() == (tmp_path / "w2" / "per_case.csv").read_text()
    assert r1["summary"] == r2["summary"]


def test_axis_aligned_mapping_matches_interpolation():
    from lesionsynth.evaluate.scoring import LabelVolume, to_grid
    from lesionsynth.io.resample import axis_aligned_map, resample_to_grid

    rng = np.random.default_rng(5)
    data = rng.integers(0, 6, size=(7, 9, 11)).astype(np.uint8)
    in_aff = np.diag([1.5, 2.0, 2.5, 1.0])
    in_aff[:3, 3] = [3.0, -4.0, 5.0]
    vol = LabelVolume(data, in_aff)
    # flips, permutations and whole-voxel shifts: identical to the general (torch) resampler
    for _ in range(12):
        perm = rng.permutation(3)
        sign = rng.choice([-1, 1], size=3)
        out_shape = tuple(int(v) for v in rng.integers(5, 14, size=3))
        m = np.eye(4)
        m[:3, :3] = 0
        for k in range(3):
            m[perm[k], k] = sign[k]
        m[:3, 3] = rng.integers(-4, 5, size=3)
        out_aff = in_aff @ m
        exact = to_grid(vol, out_aff, out_shape).labels
        ref = resample_to_grid(data.astype(np.int16), in_aff, out_aff, out_shape, mode="nearest")
        assert np.array_equal(exact, ref.astype(np.uint8))
    # a 3x finer grid whose voxel centres fall inside the coarse voxels: every coarse voxel -> 3x3x3 block
    fine = np.diag([0.5, 2 / 3, 2.5 / 3, 1.0])
    fine[:3, 3] = in_aff[:3, 3] - np.diag(in_aff)[:3] / 3
    up = to_grid(vol, fine, (21, 27, 33)).labels
    assert np.array_equal(up, data.repeat(3, 0).repeat(3, 1).repeat(3, 2))
    rot = np.array([[0.0, -1, 0, 0], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    rot[:3, :3] = np.array([[np.cos(0.3), -np.sin(0.3), 0], [np.sin(0.3), np.cos(0.3), 0], [0, 0, 1]])
    assert axis_aligned_map(rot) is None  # oblique: interpolated by the general resampler


def test_oblique_prediction_grid_is_interpolated(tmp_path, monkeypatch):
    import lesionsynth.evaluate.scoring as S
    from lesionsynth.io.resample import resample_to_grid

    calls = []
    monkeypatch.setattr(S, "resample_to_grid", lambda *a, **k: calls.append(k) or resample_to_grid(*a, **k))

    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = -24.0
    lab = np.zeros((24, 24, 24), np.uint8)
    lab[6:18, 8:16, 7:17] = 5
    c, s = np.cos(0.4), np.sin(0.4)
    rot = np.eye(4)
    rot[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    obl = rot.copy()
    obl[:3, 3] = rot[:3, :3] @ np.array([-30.0, -30.0, -30.0])
    pred = resample_to_grid(lab.astype(np.int16), aff, obl, (60, 60, 60), mode="nearest").astype(np.uint8)
    save_volume(tmp_path / "truth" / "a.nii.gz", lab, aff)
    save_volume(tmp_path / "m" / "a.nii.gz", pred, obl)
    res = evaluate_folders(tmp_path / "truth", {"m": tmp_path / "m"}, tmp_path / "out", progress=False)
    # a 1 mm oblique copy of the 2 mm truth, resampled back through both affines (nearest neighbour)
    assert calls and calls[0]["mode"] == "nearest"
    assert res["summary"]["m"]["dice"] > 0.95
    assert res["summary"]["m"]["hd95_mm"] <= 2.0 + 1e-6
