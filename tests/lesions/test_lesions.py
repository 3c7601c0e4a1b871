import numpy as np
import pytest
import torch

from lesionsynth.errors import InputError
from lesionsynth.lesions import (
    LesionFolder,
    PasteConfig,
    PasteParams,
    ProceduralLesionConfig,
    apply_procedural,
    paste_lesion,
    sample_paste,
    sample_procedural,
)


def test_folder_resamples_through_affines(lesion_dir, tiny_affine):
    lf = LesionFolder(lesion_dir)
    assert len(lf) == 3
    m = lf.load(0, tiny_affine, (32, 32, 32))
    # sphere radius 5 voxels of 1.5 mm -> 523.6 mm^3 -> ~65 voxels of 8 mm^3
    vol_mm3 = float(m.sum()) * 8
    assert abs(vol_mm3 - 4 / 3 * np.pi * 7.5**3) / (4 / 3 * np.pi * 7.5**3) < 0.25
    # centre of mass lands where the affines say
    com_vox = m.nonzero().float().mean(0).numpy()
    world = tiny_affine @ np.append(com_vox, 1)
    expected = np.array([14, 20, 22]) * 1.5 - 30
    np.testing.assert_allclose(world[:3], expected, atol=1.5)


def test_folder_flip_mirrors_world_x(lesion_dir, tiny_affine):
    lf = LesionFolder(lesion_dir)
    m = lf.load(0, tiny_affine, (32, 32, 32))
    f = lf.load(0, tiny_affine, (32, 32, 32), flip=True)
    wx = lambda t: (tiny_affine @ np.append(t.nonzero().float().mean(0).numpy(), 1))[0]  # noqa: E731
    assert abs(wx(m) + wx(f)) < 1.5 and abs(wx(m)) > 5


def test_folder_cache_keeps_only_the_lesion_box(lesion_dir, tiny_affine):
    """A cached mask comes back equal and as a new tensor, and the cache holds its bounding box only (a long
    training run over many masks, flips and label maps once grew to 24 GB caching whole grids)."""
    lf = LesionFolder(lesion_dir)
    first = lf.load(0, tiny_affine, (32, 32, 32))
    again = lf.load(0, tiny_affine, (32, 32, 32))
    assert torch.equal(first, again) and again.dtype == torch.float32 and again is not first
    again.zero_()
    assert torch.equal(lf.load(0, tiny_affine, (32, 32, 32)), first)
    (box, crop), = lf._cache.values()
    assert crop.dtype == torch.bool and crop.numel() < first.numel() // 10
    assert int(crop.sum()) == int(first.sum())


def test_empty_folder_is_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no lesion masks"):
        LesionFolder(tmp_path / "empty")


def test_procedural_volume_and_region(tiny_labelmap):
    brain = tiny_labelmap.brain_mask()
    g = torch.Generator().manual_seed(3)
    cfg = ProceduralLesionConfig(volume_ml=(2.0, 8.0), components=(1, 3))
    for _ in range(5):
        p = sample_procedural(g, cfg, brain, tiny_labelmap.affine)
        m = apply_procedural(p, brain, tiny_labelmap.affine)
        assert m.sum() > 0
        assert not (m.bool() & ~brain).any()
        vol = float(m.sum()) * 8 / 1000
        assert vol <= sum(p.volumes_ml) + 0.01 and vol > 0.5 * sum(p.volumes_ml)


def test_procedural_deterministic(tiny_labelmap):
    brain = tiny_labelmap.brain_mask()
    cfg = ProceduralLesionConfig()
    a = apply_procedural(sample_procedural(torch.Generator().manual_seed(1), cfg, brain, tiny_labelmap.affine),
                         brain, tiny_labelmap.affine)
    b = apply_procedural(sample_procedural(torch.Generator().manual_seed(1), cfg, brain, tiny_labelmap.affine),
                         brain, tiny_labelmap.affine)
    assert torch.equal(a, b)


def test_paste_soft_boundary_and_target_volume(tiny_affine):
    m = torch.zeros(32, 32, 32)
    m[10:20, 10:20, 10:20] = 1
    brain = torch.ones(32, 32, 32, dtype=torch.bool)
    alpha, w = paste_lesion(m, brain, tiny_affine, PasteParams(grade_min=0.4, softcp_sigma_mm=2.0, seed=1))
    assert abs(int((alpha > 0.5).sum()) - 1000) < 150  # the 0.5 level set keeps the mask's volume
    boundary = (alpha > 0.05) & (alpha < 0.95)
    assert boundary.sum() > 500  # a soft, blended rim
    assert (w <= alpha + 1e-6).all() and w[15, 15, 15] >= 0.4 * alpha[15, 15, 15] - 1e-6
    assert float(w[alpha > 0.99].min()) < 0.95  # the infarct grade varies inside the lesion
    # the grade never touches voxels outside the brain
    alpha2, _ = paste_lesion(m, torch.zeros_like(brain), tiny_affine, sample_paste(torch.Generator(), PasteConfig()))
    assert alpha2.sum() == 0
