"""Real nnU-Net folders: label mapping onto the schema (baseline 2-class, 6-class), crops, batches."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import save_nifti
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.labels.schema import TISSUE, LabelSchema
from lesionsynth.train.config import config_from_dict
from lesionsynth.train.data import (
    RealTrainingSet,
    load_case,
    load_val_folder,
    map_dataset_labels,
    open_folder,
)
from lesionsynth.train.sources import TrainingSources, schema_lut
from lesionsynth.train.toy import toy_config, write_blob_dataset

BASELINE = LabelSchema("lesion", ("background", "lesion"))


def test_lesion_only_dataset_on_the_6_class_schema_labels_background_and_lesion():
    dl = map_dataset_labels({"background": 0, "lesion": 1}, TISSUE)
    assert dl.labelled == (True, False, False, False, False, True)
    assert dl.lut == {0: 0, 1: TISSUE.lesion_index}
    assert not dl.complete


def test_lesion_only_dataset_on_the_baseline_schema_is_complete():
    dl = map_dataset_labels({"background": 0, "lesion": 1}, BASELINE)
    assert dl.complete and dl.lut == {0: 0, 1: 1}


def test_label_names_are_renamed_and_values_mapped():
    dl = map_dataset_labels({"background": 0, "stroke": 3, "wm": 7}, TISSUE,
                            {"stroke": "lesion", "wm": "white_matter"})
    assert dl.lut == {0: 0, 3: 5, 7: 2}
    out = dl.apply(np.array([[0, 3], [7, 3]]), "x.nii.gz")
    assert out.tolist() == [[0, 5], [2, 5]]
    with pytest.raises(InputError, match="x.nii.gz: label value 4"):
        dl.apply(np.array([0, 4]), "x.nii.gz")


@pytest.mark.parametrize("labels, rename, msg", [
    ({"background": 0, "stroke": 1}, None, "'stroke' is not a class"),
    ({"background": 0, "lesion": 1}, {"lesoin": "lesion"}, "renames 'lesoin'"),
    ({"background": 0, "lesion": [1, 2]}, None, "region-based"),
    ({"background": 0, "lesion": 1, "ignore": 2}, None, "ignore"),
    ({"lesion": 1}, None, "background"),
])
def test_bad_dataset_labels(labels, rename, msg):
    with pytest.raises(ConfigError, match=msg):
        map_dataset_labels(labels, TISSUE, rename)


def test_load_case_maps_labels_and_reorients_to_ras(tmp_path):
    root = tmp_path / "ds"
    (root / "imagesTr").mkdir(parents=True)
    (root / "labelsTr").mkdir()
    img = np.arange(4 * 5 * 6, dtype=np.float32).reshape(4, 5, 6)
    lab = np.zeros((4, 5, 6), dtype=np.uint8)
    lab[0, 0, 0] = 2
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])  # LPS: first two axes flipped relative to RAS
    save_nifti(root / "imagesTr" / "c_0000.nii.gz", img, lps)
    save_nifti(root / "labelsTr" / "c.nii.gz", lab, lps)
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T1"},
                                                   "labels": {"background": 0, "lesion": 2}}))
    folder, dl = open_folder(str(root), "Tr", BASELINE)
    image, labels, affine = load_case(folder.cases[0], dl)
    assert image.shape == (1, 4, 5, 6) and labels.shape == (4, 5, 6)
    assert np.allclose(np.diag(affine)[:3], [1, 1, 1])
    assert labels[3, 4, 0] == 1 and labels.sum() == 1  # value 2 -> class 1, moved by the flips
    assert image[0, 3, 4, 0] == img[0, 0, 0]


def test_training_items_are_deterministic_crops(tmp_path):
    root = write_blob_dataset(tmp_path / "b", n=3, shape=(20, 20, 20), lesion_value=2,
                              labels={"background": 0, "lesion": 2})
    folder, dl = open_folder(str(root), "Tr", BASELINE)
    ds = RealTrainingSet(folder, dl, BASELINE, None, (16, 16, 16), 1.0, seed=3, lesion_crop_prob=1.0)
    a, b, c = ds[7], ds[7], ds[8]
    assert a["image"].shape == (1, 16, 16, 16) and a["target"].shape == (1, 16, 16, 16)
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["target"], b["target"])
    assert not torch.equal(a["image"], c["image"])
    assert set(a["target"].unique().tolist()) <= {0, 1} and a["target"].sum() > 0  # lesion-centred crop
    assert abs(float(a["image"].mean())) < 1e-4  # z-scored


def test_real_augmentation_chain_runs_and_keeps_labels_in_schema(tmp_path):
    root = write_blob_dataset(tmp_path / "b", n=2, shape=(24, 24, 24))
    cfg = config_from_dict(toy_config(root, real={"path": str(root), "cache": True}, schema="tissue",
                                      model={"channels": [4, 8], "strides": [2], "dropout": 0.0}))
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"))
    aug = src.real.augment_cfg
    assert aug is not None and tuple(aug.spatial.crop_size) == (16, 16, 16)
    assert aug.skullstrip.p == 0.0  # lesion-only labels carry no brain mask
    b = src.batch(0)
    assert b.image.shape == (1, 1, 16, 16, 16) and not b.synthetic
    assert set(b.target.unique().tolist()) <= {0, 5}
    assert b.labelled.tolist() == [[True, False, False, False, False, True]]


def test_synthetic_and_real_iterations_alternate(tmp_path, tiny_labelmap):
    from lesionsynth.synth import SynthConfig, SynthGenerator
    from lesionsynth.train.sources import synth_config_for_training

    root = write_blob_dataset(tmp_path / "b", n=2, shape=(24, 24, 24), spacing=2.0)
    data = toy_config(root, schema="tissue", synth={"resolution": None}, mix=[1, 1],
                      preprocessing={"spacing": 2.0})
    cfg = config_from_dict(data)
    gen = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[tiny_labelmap])
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=gen)
    kinds = [src.is_synthetic(i) for i in range(4)]
    assert kinds == [True, False, True, False]
    assert [src.synthetic_count(i) for i in (0, 2, 4, 6)] == [0, 1, 2, 3]
    b0, b1 = src.batch(0), src.batch(1)
    assert b0.synthetic and b0.labelled.all() and b0.image.shape == (1, 1, 16, 16, 16)
    assert not b1.synthetic and b1.labelled.sum() == 2
    assert isinstance(gen.cfg, SynthConfig)


def test_synthetic_targets_map_onto_a_smaller_schema():
    assert schema_lut(TISSUE, BASELINE) == [0, 0, 0, 0, 0, 1]


def test_validation_folder_is_resampled_to_the_training_spacing(tmp_path):
    root = write_blob_dataset(tmp_path / "v", n=2, shape=(20, 20, 20), spacing=1.0)
    cases = load_val_folder(str(root), "Tr", BASELINE, spacing=2.0)
    assert len(cases) == 2
    shape = cases[0].image.shape
    assert shape[0] == 1 and all(s in (10, 11) for s in shape[1:]) and cases[0].target.shape == shape[1:]
    # on the grid inference runs on; intensities are normalised later, by predict's own code
    from lesionsynth.io import load_volume
    from lesionsynth.preprocess import Preprocessing, prepare

    v = load_volume(root / "imagesTr" / "blob_000_0000.nii.gz")
    ref = prepare(v.data, v.affine, Preprocessing(spacing=2.0))
    assert torch.equal(cases[0].image[0], torch.from_numpy(ref.image))
    assert np.allclose(cases[0].affine, ref.affine)
    assert cases[0].target.sum() > 0
    with pytest.raises(InputError, match="no imagesTs"):
        load_val_folder(str(root), "Ts", BASELINE, spacing=2.0)


def test_validation_normalises_and_windows_like_predict(tmp_path):
    """Validation Dice is predict's: same preparation, normalisation and windows; so it does not change
    when the scanner's intensity scale does (it did when validation skipped the normalisation)."""
    from monai.networks.nets import UNet

    from lesionsynth.evaluate.metrics import dice as metric_dice
    from lesionsynth.infer import PredictConfig, predict_volume
    from lesionsynth.train.ddp import DistInfo
    from lesionsynth.train.validate import evaluate

    torch.manual_seed(0)
    net = UNet(3, 1, 2, channels=(4, 8), strides=(2,), num_res_units=0).eval()
    with torch.no_grad():  # a network whose output depends on the absolute intensity
        net.model[0].conv.bias.add_(0.3)
    root = write_blob_dataset(tmp_path / "v", n=2, shape=(24, 24, 24), spacing=2.0)
    cases = load_val_folder(str(root), "Tr", BASELINE, spacing=2.0)
    pre = {"spacing": 2.0, "normalisation": "zscore"}
    info = DistInfo(rank=0, world=1, local_rank=0)
    args = ((8, 8, 8), 1, torch.device("cpu"), info)
    got = evaluate(net, cases, *args, preprocessing=pre, schema=BASELINE)["lesion_dice"]
    from lesionsynth.infer.predict import as_segmenter
    from lesionsynth.preprocess import Preprocessing

    seg = as_segmenter(net, BASELINE, Preprocessing(spacing=2.0, patch_size=(8, 8, 8)))
    ref = np.mean([metric_dice(c.target.numpy() == 1, predict_volume(
        seg, c.image[0].numpy(), c.affine, config=PredictConfig(tta=False)).lesion.astype(bool)) for c in cases])
    assert got == pytest.approx(ref)
    for c in cases:
        c.image = c.image * 40.0 + 300.0
    assert evaluate(net, cases, *args, preprocessing=pre, schema=BASELINE)["lesion_dice"] == pytest.approx(got)


def test_random_subcrop_can_centre_on_the_lesion():
    from lesionsynth.train.sources import random_subcrop

    target = torch.zeros(20, 20, 20, dtype=torch.long)
    target[17:19, 1:3, 17:19] = 5
    image = target[None].float()
    for seed in range(5):
        gen = torch.Generator().manual_seed(seed)
        img, tgt = random_subcrop(image, target, (8, 8, 8), gen, lesion_index=5, lesion_prob=1.0)
        assert tgt.shape == (8, 8, 8) and img.shape == (1, 8, 8, 8)
        assert (tgt == 5).sum() == 8  # the whole lesion is inside the (clamped) crop
        assert torch.equal(img[0].long(), tgt)


def _recording_generator(cfg, labelmap):
    """The training generator of ``cfg`` on ``labelmap``, recording the case index of every sample drawn."""
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.train.sources import synth_config_for_training

    gen = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[labelmap])
    calls: list[int] = []
    sample = gen.sample
    gen.sample = lambda k, seed: calls.append(k) or sample(k, seed)
    return gen, calls


def test_synthetic_cases_repeat_with_different_subcrops(tmp_path, tiny_labelmap):
    data = toy_config(None, real=None, schema="tissue", synth={"resolution": None},
                      preprocessing={"spacing": 2.0}, synth_crop_size=[24, 24, 24], synth_repeats=2)
    cfg = config_from_dict(data)
    gen, calls = _recording_generator(cfg, tiny_labelmap)
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=gen)
    batches = [src.batch(i) for i in range(4)]
    assert calls == [0, 1]  # iterations 0, 1 share case 0; 2, 3 share case 1
    assert all(b.image.shape == (1, 1, 16, 16, 16) for b in batches)
    assert not torch.equal(batches[0].image, batches[1].image)  # different sub-crops
    # a run resumed at iteration 3 draws exactly the same batch
    again = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), start=3, generator=gen)
    b3 = again.batch(3)
    assert torch.equal(b3.image, batches[3].image) and torch.equal(b3.target, batches[3].target)


def test_synthetic_repeats_count_synthetic_iterations_when_mixed_with_real(tmp_path, tiny_labelmap):
    root = write_blob_dataset(tmp_path / "b", n=2, shape=(24, 24, 24), spacing=2.0)
    data = toy_config(root, schema="tissue", synth={"resolution": None}, mix=[1, 1], synth_repeats=2,
                      preprocessing={"spacing": 2.0}, synth_crop_size=[24, 24, 24])
    cfg = config_from_dict(data)
    gen, calls = _recording_generator(cfg, tiny_labelmap)
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=gen)
    for i in range(8):
        if src.is_synthetic(i):
            src.batch(i)
    assert calls == [0, 1]  # synthetic iterations 0, 2 share case 0; 4, 6 share case 1
