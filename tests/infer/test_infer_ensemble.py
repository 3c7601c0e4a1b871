"""Multi-modal ensembling: co-registered modalities fused by their logits, probabilities or lesion union."""

from __future__ import annotations

from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch
from test_infer_toys import (
    make_affine,
    tiny_unet,
    toy_scan,
)

from lesionsynth.cli import main
from lesionsynth.infer import PredictConfig, predict_volume
from lesionsynth.infer.decide import decide
from lesionsynth.infer.predict import as_segmenter, modality_logits
from lesionsynth.labels import TISSUE
from lesionsynth.models import model_state, save_checkpoint

SHAPE = (22, 26, 20)


def test_ensemble_equals_mean_of_per_modality_logits_same_grid():
    A = make_affine(SHAPE, spacing=2.0, flip_x=True, rot=(0.0, 8.0, 0.0))
    flair, _ = toy_scan(A, SHAPE, "flair", noise=0.01)
    t1, _ = toy_scan(A, SHAPE, "t1", noise=0.01, seed=1)
    model, _ = tiny_unet(seed=2)
    cfg = PredictConfig(save_probabilities=True, fusion="logits")
    pre = {"spacing": 2.0}  # work on the 2 mm grid itself: fast
    per = [predict_volume(model, im, A, config=cfg, preprocessing=pre, return_logits=True) for im in (flair, t1)]
    ens = predict_volume(model, [flair, t1], A, config=cfg, preprocessing=pre, return_logits=True)
    mean = (per[0].logits + per[1].logits) / 2
    np.testing.assert_allclose(ens.logits, mean, atol=1e-5)
    np.testing.assert_allclose(ens.probs, torch.softmax(torch.from_numpy(mean), 0).numpy(), atol=1e-5)
    np.testing.assert_array_equal(ens.labels, mean.argmax(0))
    np.testing.assert_allclose(ens.uncertainty, (per[0].uncertainty + per[1].uncertainty) / 2, atol=1e-6)
    # the mean of logits is not the mean of probabilities: ensembling is really done on logits
    assert not np.allclose(ens.probs, (per[0].probs + per[1].probs) / 2, atol=1e-3)


def test_ensemble_of_modalities_on_different_grids_lands_on_the_first_grid():
    A1 = make_affine(SHAPE, spacing=2.0, flip_x=True)
    s2 = (30, 34, 12)
    A2 = make_affine(s2, spacing=(1.5, 1.5, 3.5), rot=(4.0, 0.0, -6.0))
    flair, _ = toy_scan(A1, SHAPE, "flair")
    t1, _ = toy_scan(A2, s2, "t1")
    seg = as_segmenter(tiny_unet(seed=4)[0], TISSUE)
    cfg = PredictConfig(tta=False, fusion="logits")
    ens = predict_volume(seg, [flair, t1], [A1, A2], config=cfg, return_logits=True)
    assert ens.labels.shape == SHAPE and np.array_equal(ens.affine, A1)
    f1, f2 = modality_logits(seg, flair, A1, cfg), modality_logits(seg, t1, A2, cfg)
    l1 = decide([f1], A1, SHAPE, want_logits=True).logits
    l2 = decide([f2], A1, SHAPE, want_logits=True).logits
    np.testing.assert_allclose(ens.logits, (l1 + l2) / 2, atol=1e-4)


def test_cli_ensemble_writes_one_subject_named_after_the_first_input(tmp_path):
    A = make_affine(SHAPE, spacing=2.0)
    paths = []
    for name, contrast in (("sub-02_FLAIR", "flair"), ("sub-02_T1w", "t1")):
        img, _ = toy_scan(A, SHAPE, contrast)
        paths.append(tmp_path / f"{name}.nii.gz")
        nib.save(nib.Nifti1Image(img, A), str(paths[-1]))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "-i", *map(str, paths), "-o", str(out), "--model", str(ckpt), "--device", "cpu",
               "--ensemble", "--fast"])
    assert rc == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["sub-02_FLAIR_labels.nii.gz", "sub-02_FLAIR_lesion.nii.gz", "sub-02_FLAIR_qc.png",
                     "volumes.csv"]
    row = (out / "volumes.csv").read_text().splitlines()[1]
    assert "sub-02_FLAIR.nii.gz;" in row and "sub-02_T1w.nii.gz" in row


def test_group_subjects_groups_nnunet_channels_per_case(tmp_path):
    from lesionsynth.errors import InputError
    from lesionsynth.infer.files import group_subjects

    files = [tmp_path / n for n in ("caseB_0001.nii.gz", "caseA_0000.nii.gz", "caseB_0000.nii.gz",
                                    "caseA_0001.nii.gz")]
    groups = group_subjects(files, ensemble=True)
    assert [(s, [p.name for p in g]) for s, g in groups] == [
        ("caseB", ["caseB_0000.nii.gz", "caseB_0001.nii.gz"]), ("caseA", ["caseA_0000.nii.gz", "caseA_0001.nii.gz"])]
    assert [s for s, _ in group_subjects(files, ensemble=False)] == [
        "caseB_0001", "caseA_0000", "caseB_0000", "caseA_0001"]
    plain = [tmp_path / "t1.nii.gz", tmp_path / "flair.nii.gz"]
    assert group_subjects(plain, ensemble=True) == [("t1", plain)]
    with pytest.raises(InputError, match="no nnU-Net channel suffix"):
        group_subjects([*files, plain[0]], ensemble=True)
    with pytest.raises(InputError, match="given twice"):
        group_subjects([tmp_path / "caseA_0000.nii.gz", tmp_path / "x" / "caseA_0000.nii", files[0]], ensemble=True)
    one_case = [tmp_path / "flair" / "s1_0000.nii.gz", tmp_path / "t1" / "s1_0000.nii.gz"]
    assert group_subjects(one_case, ensemble=True) == [("s1", one_case)]


def test_cli_ensemble_of_an_nnunet_folder_writes_one_output_per_case(tmp_path):
    """imagesTs with two cases of two channels each: each case averages its own channels only."""
    A = make_affine(SHAPE, spacing=2.0)
    images = tmp_path / "imagesTs"
    images.mkdir()
    for case, shift in (("caseA", 0.0), ("caseB", 5.0)):
        for ch, contrast in (("0000", "t1"), ("0001", "flair")):
            img, _ = toy_scan(A, SHAPE, contrast)
            nib.save(nib.Nifti1Image(img + shift, A), str(images / f"{case}_{ch}.nii.gz"))
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "m.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "-i", str(images), "-o", str(out), "--model", str(ckpt), "--device", "cpu",
               "--ensemble", "--fast"])
    assert rc == 0
    assert sorted(p.name for p in out.glob("*_labels.nii.gz")) == ["caseA_labels.nii.gz", "caseB_labels.nii.gz"]
    rows = {r.split(",")[0]: r for r in (out / "volumes.csv").read_text().splitlines()[1:]}
    assert "caseA_0000.nii.gz;" in rows["caseA"] and "caseA_0001.nii.gz" in rows["caseA"]
    assert "caseB" not in rows["caseA"].split(",", 1)[1]


def test_probs_fusion_averages_probabilities_and_union_adds_every_modality_lesion():
    A = make_affine(SHAPE, spacing=2.0, flip_x=True, rot=(0.0, 8.0, 0.0))
    flair, _ = toy_scan(A, SHAPE, "flair", noise=0.01)
    t1, _ = toy_scan(A, SHAPE, "t1", noise=0.01, seed=1)
    model, _ = tiny_unet(seed=2)
    pre = {"spacing": 2.0}
    li = TISSUE.lesion_index
    cfg = PredictConfig(save_probabilities=True, tta=False)
    per = [predict_volume(model, im, A, config=cfg, preprocessing=pre) for im in (flair, t1)]
    mean = (per[0].probs + per[1].probs) / 2
    assert cfg.fusion == "probs"  # the default
    ens = predict_volume(model, [flair, t1], A, config=cfg, preprocessing=pre, return_logits=True)
    np.testing.assert_allclose(ens.probs, mean, atol=1e-5)
    np.testing.assert_array_equal(ens.labels, mean.argmax(0))
    np.testing.assert_allclose(np.exp(ens.logits), mean, atol=1e-5)
    uni = predict_volume(model, [flair, t1], A, config=replace(cfg, fusion="union"), preprocessing=pre)
    anyone = (per[0].labels == li) | (per[1].labels == li)
    np.testing.assert_array_equal(uni.lesion, anyone | (mean.argmax(0) == li))
    np.testing.assert_array_equal(uni.labels[~anyone], mean.argmax(0)[~anyone])
    np.testing.assert_allclose(uni.probs, mean, atol=1e-5)


def test_union_is_a_superset_of_every_member_and_fusion_ignores_one_scan():
    """With a lesion-happy network the union is larger than the probability mean's lesion."""
    A = make_affine(SHAPE, spacing=2.0)
    flair, _ = toy_scan(A, SHAPE, "flair", noise=0.01)
    t1, _ = toy_scan(A, SHAPE, "t1", noise=0.01, seed=1)
    model, _ = tiny_unet(seed=5)
    with torch.no_grad():  # bias the lesion output so that some voxels of each scan are lesion
        conv = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d | torch.nn.ConvTranspose3d)][-1]
        conv.bias[TISSUE.lesion_index] += 0.6
    pre = {"spacing": 2.0}
    cfg = PredictConfig(tta=False)
    per = [predict_volume(model, im, A, config=cfg, preprocessing=pre).lesion for im in (flair, t1)]
    assert per[0].any() and per[1].any() and not np.array_equal(per[0], per[1])
    uni = predict_volume(model, [flair, t1], A, config=replace(cfg, fusion="union"), preprocessing=pre).lesion
    prob = predict_volume(model, [flair, t1], A, config=replace(cfg, fusion="probs"), preprocessing=pre).lesion
    assert (uni >= per[0]).all() and (uni >= per[1]).all() and (uni >= prob).all()
    assert uni.sum() > prob.sum()
    for fusion in ("probs", "union"):  # one scan: the fusion changes nothing
        one = predict_volume(model, flair, A, config=replace(cfg, fusion=fusion), preprocessing=pre)
        np.testing.assert_array_equal(one.lesion, per[0])


def test_fusion_names_are_checked():
    from lesionsynth.errors import ConfigError

    with pytest.raises(ConfigError, match="predict.fusion"):
        PredictConfig(fusion="max")
    with pytest.raises(SystemExit) as e:  # argparse: one usage line, exit 2
        main(["predict", "-i", "x.nii.gz", "-o", "o", "--fusion", "max"])
    assert e.value.code == 2
