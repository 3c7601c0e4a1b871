import numpy as np
import pytest
import torch

from conftest import SHARED, save_nifti
from lesionsynth.errors import ConfigError
from lesionsynth.labels import TISSUE, hard_labelmap, load_mapping, load_schema


def test_default_schema():
    assert TISSUE.classes == ("background", "grey_matter", "white_matter", "partial_volume", "csf", "lesion")
    assert TISSUE.lesion_index == 5


def test_user_schema_from_yaml(tmp_path):
    p = tmp_path / "vent.yaml"
    p.write_text("name: mine\nclasses: {0: background, 1: brain, 2: ventricles, 3: lesion}\nlesion: lesion\n")
    s = load_schema(p)
    assert s.num_classes == 4 and s.index("ventricles") == 2 and s.lesion_index == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nclasses: {0: background}\nlesion: nope\n")
    with pytest.raises(ConfigError):
        load_schema(bad)


def test_shipped_ventricle_schema_and_mapping():
    m = load_mapping("freesurfer-to-tissue-ventricles")
    assert m.schema.name == "tissue-ventricles"
    out = m.apply(np.array([4, 43, 24, 2, 3]))
    v = m.schema.index("ventricles")
    assert out.tolist() == [v, v, m.schema.index("csf"), m.schema.index("white_matter"),
                            m.schema.index("grey_matter")]


def test_freesurfer_mapping_lesions_are_white_matter():
    m = load_mapping("freesurfer-to-tissue")
    out = m.apply(np.array([[0, 2, 3], [25, 57, 24]]))
    assert out.tolist() == [[0, 2, 1], [2, 2, 4]]
    assert m.apply(np.array([502, 530])).tolist() == [0, 0]


def test_unmapped_value_is_error(tmp_path, tiny_affine):
    d = np.zeros((8, 8, 8), np.float32)
    d[2:5, 2:5, 2:5] = 2
    d[3, 3, 3] = 9999
    p = save_nifti(tmp_path / "seg.nii.gz", d, tiny_affine)
    with pytest.raises(ConfigError, match="9999"):
        hard_labelmap(p)


def test_hard_labelmap_generation_classes(tmp_path, tiny_affine):
    d = np.zeros((8, 8, 8), np.float32)
    d[1:7, 1:7, 1:7] = 3
    d[2:6, 2:6, 2:6] = 2
    d[3:5, 3:5, 3:5] = 25
    d[0, 0, 0] = 502
    lm = hard_labelmap(save_nifti(tmp_path / "seg.nii.gz", d, tiny_affine))
    assert lm.gen_names == ["0", "2", "3", "25", "502"]
    assert lm.gen_to_target == [0, 2, 1, 2, 0]
    t = lm.target_probs_argmax()
    assert int(t[3, 3, 3]) == 2 and int(t[1, 1, 1]) == 1 and int(t[0, 0, 0]) == 0


def test_mni_default_partial_volume_definition():
    from lesionsynth.labels import mni_tissue_probs

    probs, affine, _ = mni_tissue_probs()
    assert probs.shape == (5, 197, 233, 189)
    np.testing.assert_allclose(probs.sum(0), 1.0, atol=1e-4)
    gm, wm, pv = probs[1], probs[2], probs[3]
    # partial volume only where neither tissue dominates
    assert pv.max() > 0.9 and (pv[(gm > 0.9) | (wm > 0.9)] < 1e-6).all()
    t = torch.from_numpy(probs).argmax(0)
    counts = torch.bincount(t.flatten(), minlength=5)
    assert all(int(c) > 10000 for c in counts)


@pytest.mark.skipif(not (SHARED / "labelmaps-synthseg").is_dir(), reason="../shared/data not present")
def test_real_freesurfer_maps_map_completely():
    lm = hard_labelmap(SHARED / "labelmaps-synthseg" / "training_seg_01.nii.gz")
    t = lm.target_probs_argmax()
    assert set(torch.unique(t).tolist()) <= {0, 1, 2, 4}
    assert int((t == 2).sum()) > 300_000  # white matter, with its lesions


def test_merging_tissue_labels_keeps_targets_and_background_labels(tmp_path, tiny_affine):
    from lesionsynth.labels.sources import merge_by_target

    data = np.zeros((8, 8, 8), np.float32)
    data[1:3], data[3:5], data[5], data[6], data[7] = 3, 42, 2, 24, 515  # 2 GM labels, WM, CSF, skull
    lm = hard_labelmap(save_nifti(tmp_path / "seg.nii.gz", data, tiny_affine))
    merged = merge_by_target(lm)
    assert lm.num_gen == 6 and merged.num_gen == 5  # 3 and 42 share one grey-matter class
    assert torch.equal(lm.target_probs_argmax(), merged.target_probs_argmax())
    assert merged.gen_names.count("grey_matter") == 1 and {"0", "515"} <= set(merged.gen_names)


def test_label_source_folder_mixes_soft_and_hard_maps(tmp_path):
    from lesionsynth.errors import InputError
    from lesionsynth.labels.sources import load_label_source

    probs = np.zeros((8, 8, 8, 4), np.float32)
    probs[..., 1] = 1.0  # all white matter
    (tmp_path / "maps").mkdir()
    save_nifti(tmp_path / "maps" / "a_soft.nii.gz", probs, np.eye(4))
    hard = np.zeros((8, 8, 8), np.int16)
    hard[2:6, 2:6, 2:6] = 2  # FreeSurfer left cerebral white matter
    save_nifti(tmp_path / "maps" / "b_hard.nii.gz", hard, np.eye(4))
    soft_map, hard_map = load_label_source(tmp_path / "maps")
    assert soft_map.probs is not None and soft_map.index is None
    assert hard_map.index is not None and hard_map.probs is None
    (tmp_path / "maps" / "c_junk.nii.gz").write_bytes(b"not an image")
    with pytest.raises(InputError, match="c_junk.nii.gz: cannot read"):
        load_label_source(tmp_path / "maps")
