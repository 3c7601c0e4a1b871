"""Outputs land on the input's own grid (shape and affine), and the lesion where it is."""

from __future__ import annotations

import csv

import nibabel as nib
import numpy as np
import pytest
import torch
from test_infer_toys import (
    RAW,
    BrightLesionNet,
    dice,
    make_affine,
    tiny_unet,
    toy_scan,
    world_coords,
)

from lesionsynth.cli import main
from lesionsynth.infer import PredictConfig, predict_volume
from lesionsynth.infer.decide import LogitField, decide
from lesionsynth.labels import TISSUE
from lesionsynth.models import model_state, save_checkpoint

OBLIQUE_SHAPE = (24, 28, 22)


def oblique_las_affine() -> np.ndarray:
    """2 mm, LAS (x axis pointing left), rotated 12/-7/9 degrees: a scan stored obliquely."""
    A = make_affine(OBLIQUE_SHAPE, spacing=2.0, flip_x=True, rot=(12.0, -7.0, 9.0))
    assert nib.aff2axcodes(A) == ("L", "A", "S")
    return A


def test_oblique_las_2mm_outputs_have_exactly_its_shape_and_affine(tmp_path):
    A = oblique_las_affine()
    img, _ = toy_scan(A, OBLIQUE_SHAPE, noise=0.01)
    src = tmp_path / "in" / "sub-01_flair.nii.gz"
    src.parent.mkdir()
    nib.save(nib.Nifti1Image(img, A), str(src))
    stored_affine = nib.load(str(src)).affine
    model, cfg = tiny_unet()
    ckpt = save_checkpoint(tmp_path / "model.pt", model_state(model, cfg, TISSUE))
    out = tmp_path / "out"
    rc = main(["predict", "-i", str(src), "-o", str(out), "--model", str(ckpt), "--device", "cpu",
               "--save-probabilities"])
    assert rc == 0
    for kind in ("labels", "lesion", "uncertainty"):
        o = nib.load(str(out / f"sub-01_flair_{kind}.nii.gz"))
        assert o.shape == OBLIQUE_SHAPE, kind
        assert np.array_equal(o.affine, stored_affine), kind
    p = nib.load(str(out / "sub-01_flair_probabilities.nii.gz"))
    assert p.shape == (*OBLIQUE_SHAPE, 6) and np.array_equal(p.affine, stored_affine)
    np.testing.assert_allclose(np.asarray(p.dataobj).sum(-1), 1.0, atol=1e-4)
    labels = np.asarray(nib.load(str(out / "sub-01_flair_labels.nii.gz")).dataobj)
    np.testing.assert_array_equal(labels, np.asarray(p.dataobj).argmax(-1))
    u = np.asarray(nib.load(str(out / "sub-01_flair_uncertainty.nii.gz")).dataobj)
    assert u.min() >= 0.0 and u.max() <= 1.0
    assert (out / "sub-01_flair_qc.png").stat().st_size > 1000
    rows = list(csv.DictReader(open(out / "volumes.csv")))
    assert [r["stem"] for r in rows] == ["sub-01_flair"]


GRIDS = {
    "oblique_las_2mm": (OBLIQUE_SHAPE, dict(spacing=2.0, flip_x=True, rot=(12.0, -7.0, 9.0))),
    "ras_1mm": ((44, 50, 36), dict(spacing=1.0)),  # exact (index-copy) reslicing path
    "las_1mm_anisotropic": ((40, 46, 12), dict(spacing=(1.1, 1.0, 3.5), flip_x=True)),
}


@pytest.mark.parametrize("grid", sorted(GRIDS))
def test_obvious_lesion_comes_back_where_it_is(grid):
    shape, kw = GRIDS[grid]
    A = make_affine(shape, **kw)
    img, truth = toy_scan(A, shape)
    net = BrightLesionNet()
    pred = predict_volume(net, img, A, TISSUE, config=PredictConfig(window=32), preprocessing=RAW)
    assert pred.lesion.shape == shape
    assert dice(pred.lesion, truth) > 0.85
    p = world_coords(A, shape)
    centre_pred = p[pred.lesion.astype(bool)].mean(0)
    centre_true = p[truth].mean(0)
    assert np.linalg.norm(centre_pred - centre_true) < 1.0  # mm
    assert set(np.unique(pred.labels)) <= {0, 5}


def test_exact_and_interpolated_reslicing_agree(monkeypatch):
    import lesionsynth.infer.decide as dec

    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 10, 12, 9, generator=g)
    unc = torch.rand(10, 12, 9, generator=g)
    work = make_affine((10, 12, 9), spacing=1.0)
    shift = np.eye(4)
    shift[:3, 3] = (3, 2, 4)
    field = LogitField(logits, work @ shift, unc)
    out_aff = work @ np.diag([-1.0, 1.0, 1.0, 1.0])  # LAS 1 mm grid, box inside and outside it
    out_aff[:3, 3] = work[:3, :3] @ np.array([15.0, 0.0, 0.0]) + work[:3, 3]
    out_shape = (16, 17, 15)
    assert dec.exact_index_map(np.linalg.inv(field.affine) @ out_aff) is not None
    a = decide([field], out_aff, out_shape, want_probs=True, want_logits=True, slab_elements=5000)
    monkeypatch.setattr(dec, "exact_index_map", lambda M, tol=1e-4: None)
    b = decide([field], out_aff, out_shape, want_probs=True, want_logits=True)
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-4)
    np.testing.assert_allclose(a.disagreement, b.disagreement, atol=1e-5)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert (a.labels == 0).sum() > 0 and (a.labels != 0).sum() > 0  # both inside and outside the box


@pytest.mark.parametrize("shape,kw", [((2, 2, 2), dict(spacing=2.0)),
                                      ((40, 44, 5), dict(spacing=(1.0, 1.0, 6.0), rot=(20.0, 0.0, 0.0)))])
def test_tiny_and_thick_slab_scans_come_back_on_their_grid(shape, kw):
    A = make_affine(shape, **kw)
    img, _ = toy_scan(A, shape)
    pred = predict_volume(tiny_unet()[0], img, A, config=PredictConfig(save_probabilities=True))
    assert pred.labels.shape == shape and pred.probs.shape == (6, *shape) and np.array_equal(pred.affine, A)
    np.testing.assert_allclose(pred.probs.sum(0), 1.0, atol=1e-5)
