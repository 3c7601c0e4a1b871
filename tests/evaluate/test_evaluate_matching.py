"""Case identifiers and matching across folders."""

from __future__ import annotations

import pytest

from lesionsynth.errors import InputError
from lesionsynth.evaluate.matching import list_cases, match_cases


def _touch(folder, *names):
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        (folder / n).write_bytes(b"")


def test_common_suffixes_are_stripped(tmp_path):
    _touch(tmp_path / "a", "sub-01_lesion.nii.gz", "sub-02_lesion.nii.gz", "notes.json")
    _touch(tmp_path / "b", "sub-01_pred.nii", "sub-02_pred.nii")
    _touch(tmp_path / "c", "case_0000_0000.nii.gz", "case_0001_0000.nii.gz")
    assert sorted(list_cases(tmp_path / "a")) == ["sub-01", "sub-02"]
    assert sorted(list_cases(tmp_path / "b")) == ["sub-01", "sub-02"]
    assert sorted(list_cases(tmp_path / "c")) == ["case_0000", "case_0001"]


def test_numbers_and_uncommon_suffixes_are_kept(tmp_path):
    _touch(tmp_path / "a", "case_0000.nii.gz", "case_0001.nii.gz")
    _touch(tmp_path / "b", "case_0000.nii.gz")
    _touch(tmp_path / "c", "x_seg.nii.gz", "y.nii.gz")
    assert sorted(list_cases(tmp_path / "a")) == ["case_0000", "case_0001"]
    assert list(list_cases(tmp_path / "b")) == ["case_0000"]
    assert sorted(list_cases(tmp_path / "c")) == ["x_seg", "y"]


def test_dataset_folder_uses_labels(tmp_path):
    _touch(tmp_path / "ds" / "imagesTr", "c1_0000.nii.gz")
    _touch(tmp_path / "ds" / "labelsTr", "c1.nii.gz", "c2.nii.gz")
    assert sorted(list_cases(tmp_path / "ds")) == ["c1", "c2"]
    _touch(tmp_path / "ds" / "labelsTs", "t1.nii.gz")
    assert list(list_cases(tmp_path / "ds")) == ["t1"]
    assert sorted(list_cases(tmp_path / "ds" / "labelsTr")) == ["c1", "c2"]


def test_missing_and_extra_are_reported(tmp_path):
    _touch(tmp_path / "truth", "a.nii.gz", "b.nii.gz", "c.nii.gz")
    _touch(tmp_path / "m1", "a.nii.gz", "b.nii.gz", "c.nii.gz")
    _touch(tmp_path / "m2", "a_pred.nii.gz", "c_pred.nii.gz", "z_pred.nii.gz")
    m = match_cases(tmp_path / "truth", {"m1": tmp_path / "m1", "m2": tmp_path / "m2"})
    assert m.cases == ["a", "b", "c"]
    assert sorted(m.preds["m2"]) == ["a", "c"]
    assert m.missing == {"m1": [], "m2": ["b"]} and m.extra == {"m1": [], "m2": ["z"]}
    lines = m.problems()
    assert any("m2: 1 truth case(s) without prediction: b" in x for x in lines)
    assert any("without truth: z" in x for x in lines)


def test_matching_errors(tmp_path):
    _touch(tmp_path / "truth", "a.nii.gz")
    _touch(tmp_path / "dup", "a.nii", "a.nii.gz")
    _touch(tmp_path / "other", "q.nii.gz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder not found"):
        list_cases(tmp_path / "nope")
    with pytest.raises(InputError, match="no NIfTI files"):
        list_cases(tmp_path / "empty")
    with pytest.raises(InputError, match="two files for case 'a'"):
        list_cases(tmp_path / "dup")
    with pytest.raises(InputError, match="no case of model 'm' matches"):
        match_cases(tmp_path / "truth", {"m": tmp_path / "other"})


def test_predict_output_folder_reads_labels_only(tmp_path):
    names = []
    for c in ("case_0000", "case_0001"):
        names += [f"{c}_labels.nii.gz", f"{c}_lesion.nii.gz", f"{c}_uncertainty.nii.gz", f"{c}_qc.png"]
    _touch(tmp_path / "pred", *names)
    got = list_cases(tmp_path / "pred")
    # `_labels` is stripped; the last four digits differ between files, so they are part of the id
    assert sorted(got) == ["case_0000", "case_0001"]
    assert all(p.name.endswith("_labels.nii.gz") for p in got.values())


def test_channel_suffix_from_image_names(tmp_path):
    _touch(tmp_path / "truth", "a.nii.gz", "b.nii.gz")
    _touch(tmp_path / "many", "a_0000_labels.nii.gz", "b_0000_labels.nii.gz", "a_0000_lesion.nii.gz")
    _touch(tmp_path / "one", "b_0000_labels.nii.gz", "b_0000_lesion.nii.gz")
    assert sorted(list_cases(tmp_path / "many")) == ["a", "b"]
    m = match_cases(tmp_path / "truth", {"one": tmp_path / "one", "many": tmp_path / "many"})
    assert sorted(m.preds["one"]) == ["b"] and m.missing["one"] == ["a"] and m.extra["one"] == []
    assert sorted(m.preds["many"]) == ["a", "b"]
