"""LDM configs and training data: shipped configs, validation, grids, sources, the volume condition."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import save_nifti
from lesionsynth.config import load_config
from lesionsynth.errors import ConfigError
from lesionsynth.generative.ldm.config import LDMConfig
from lesionsynth.generative.ldm.data import (
    LESION_MASK,
    Condition,
    cached_label_set,
    grid_affine,
    load_label_set,
)
from lesionsynth.labels import TISSUE


@pytest.mark.parametrize("name", ["ldm-tiny-cpu", "ldm-lesion-mask", "ldm-ventricles-mask", "ldm-image-spade"])
def test_shipped_configs_load(name):
    cfg = load_config(LDMConfig, name)
    f = cfg.latent_factor * 2 ** (len(cfg.diffusion.channels) - 1)
    assert all(s % f == 0 for s in cfg.grid.shape)


def test_config_errors_name_the_problem():
    with pytest.raises(ConfigError, match="unknown key 'chanels'"):
        load_config(LDMConfig, "ldm-tiny-cpu", overrides={"autoencoder": {"chanels": [4, 8]}})
    with pytest.raises(ConfigError, match="multiple of 4"):
        load_config(LDMConfig, "ldm-tiny-cpu", overrides={"grid": {"shape": [18, 20, 20]}})
    with pytest.raises(ConfigError, match="attention_levels"):
        load_config(LDMConfig, "ldm-tiny-cpu", overrides={"diffusion": {"attention_levels": [True]}})
    with pytest.raises(ConfigError, match="condition_dropout"):
        load_config(LDMConfig, "ldm-tiny-cpu", overrides={"diffusion": {"condition_dropout": 1.0}})


def test_grid_affine_is_centred():
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"grid": {"centre": [5.0, -3.0, 1.0]}})
    a = grid_affine(cfg.grid)
    centre = a @ np.append((np.asarray(cfg.grid.shape) - 1) / 2.0, 1.0)
    np.testing.assert_allclose(centre[:3], [5.0, -3.0, 1.0])
    np.testing.assert_allclose(np.diag(a)[:3], [2.0, 2.0, 2.0])


def test_condition_normalise_and_measure():
    cond = Condition("lesion", 1, r_min=0.01, r_max=0.05, icv_voxels=100.0, voxel_ml=0.008)
    assert cond.ratio(cond.normalise(0.03)) == pytest.approx(0.03)
    assert cond.normalise(0.01) == pytest.approx(0.0) and cond.normalise(0.05) == pytest.approx(1.0)
    labels = torch.zeros(2, 4, 4, 4, dtype=torch.long)
    labels[0, :2, :2, :1] = 1  # 4 voxels
    labels[1, :2, :2, :2] = 1  # 8 voxels
    np.testing.assert_allclose(cond.measure(labels).numpy(), [0.04, 0.08])
    np.testing.assert_allclose(cond.volume_ml(labels).numpy(), [0.032, 0.064])
    # without a fixed ICV the ratio is over non-background voxels
    free = Condition("lesion", 1, 0.0, 1.0, None, 0.008)
    labels[0, 2:, :, :] = 2  # 32 more brain voxels
    np.testing.assert_allclose(free.measure(labels).numpy(), [4 / 36, 1.0])


def _tiny_hard_labels(tmp_path, tiny_labelmap, tiny_affine):
    path = save_nifti(tmp_path / "tiny_labels.nii.gz", tiny_labelmap.target_probs_argmax().numpy().astype(np.int16),
                      tiny_affine)
    return path


def test_pasted_lesions_on_label_maps(tmp_path, tiny_labelmap, tiny_affine, lesion_dir):
    path = _tiny_hard_labels(tmp_path, tiny_labelmap, tiny_affine)
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"data": {
        "labels": str(path), "mapping": "identity", "lesions": str(lesion_dir), "flip": True}})
    ls = load_label_set(cfg)
    assert ls.schema.classes == TISSUE.classes
    assert ls.labels.shape == (6, 20, 20, 20) and ls.labels.dtype == torch.uint8
    les = TISSUE.lesion_index
    n = (ls.labels == les).flatten(1).sum(1)
    assert (n > 0).all()
    # a mask and its mirror have about the same volume; the three lesions differ (radii 5, 4, 6)
    assert abs(int(n[0]) - int(n[1])) <= 0.3 * int(n[0])
    assert n[4] > n[0] > n[2]
    # the lesion only replaces brain voxels: background stays background
    assert ((ls.labels == les) <= (ls.labels != 0)).all()
    cond = ls.condition("lesion", cfg.grid.spacing)
    c = cond.normalise(cond.measure(ls.labels))
    assert float(c.min()) == pytest.approx(0.0) and float(c.max()) == pytest.approx(1.0)
    assert cond.icv_voxels is None


def test_constant_condition_is_an_error(tmp_path, tiny_labelmap, tiny_affine):
    path = _tiny_hard_labels(tmp_path, tiny_labelmap, tiny_affine)
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"data": {"labels": str(path), "mapping": "identity",
                                                                   "condition_label": "csf"}})
    ls = load_label_set(cfg)
    with pytest.raises(ConfigError, match="same|every training map"):
        ls.condition("csf", cfg.grid.spacing)


@pytest.mark.slow  # builds the MNI152 default label map (~5-20 s)
def test_lesion_only_masks_use_the_mni_brain_as_icv(tmp_path, lesion_dir):
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"data": {"labels": None, "lesions": str(lesion_dir)}})
    ls, _ = cached_label_set(cfg, [tmp_path])
    assert ls.schema == LESION_MASK and ls.labels.shape == (3, 20, 20, 20)
    assert ls.labels.max() == 1
    # the 20^3 grid at 2 mm around the MNI origin lies inside the brain almost entirely
    assert 0.9 * 20 ** 3 < ls.icv_voxels <= 20 ** 3
    # the cache is reused (same key) and gives the same data
    ls2, hit = cached_label_set(cfg, [tmp_path])
    assert hit == tmp_path / "data_cache.pt" and torch.equal(ls.labels, ls2.labels)


def test_dataset_folder_labels_map_by_name(tmp_path, tiny_affine):
    from lesionsynth.data import write_case, write_dataset_json

    root = tmp_path / "ds"
    lab = np.zeros((20, 20, 20), np.uint8)
    lab[5:15, 5:15, 5:15] = 1  # "white_matter" in this dataset's own numbering
    lab[8:11, 8:11, 8:11] = 2  # "lesion"
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = -19.0
    write_case(root, "c0", [lab.astype(np.float32)], lab, aff)
    write_dataset_json(root, ["t1"], {"background": 0, "white_matter": 1, "lesion": 2}, 1)
    cfg = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"data": {"labels": None, "dataset": str(root)}})
    ls = load_label_set(cfg)
    got = ls.labels[0].numpy()
    assert set(np.unique(got)) == {0, TISSUE.index("white_matter"), TISSUE.lesion_index}
    assert (got == TISSUE.lesion_index).sum() == 27
    cfg_bad = load_config(LDMConfig, "ldm-tiny-cpu", overrides={"data": {"labels": None, "dataset": str(root),
                                                                       "schema": "tissue-ventricles"}})
    write_dataset_json(root, ["t1"], {"background": 0, "wm": 1, "lesion": 2}, 1)
    with pytest.raises(ConfigError, match="'wm' is not a class"):
        load_label_set(cfg_bad)
