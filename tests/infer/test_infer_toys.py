"""Toy scans defined in world space (so any grid can be sampled exactly), tiny networks, and the
preprocessing unit tests. Other ``test_infer_*`` files import the helpers from here."""

from __future__ import annotations

import numpy as np
import torch

from lesionsynth.io import voxel_sizes
from lesionsynth.preprocess import Preprocessing
from lesionsynth.preprocess.prepare import (
    foreground_mask,
    normalise_intensity,
    plan_windows,
    prepare,
    working_grid,
)

BRAIN_RADII = (18.0, 22.0, 16.0)  # mm
LESION = ((6.0, -5.0, 3.0), 6.0)  # centre (mm), radius (mm)
CONTRASTS = {  # background, csf, grey, white, lesion
    "flair": (0.0, 0.1, 0.75, 0.6, 1.6),
    "t1": (0.0, 0.25, 0.6, 0.9, 0.4),
}


def rotation(deg: tuple[float, float, float]) -> np.ndarray:
    a, b, c = np.deg2rad(deg)
    rx = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    return rx @ ry @ rz


def make_affine(shape, spacing=2.0, flip_x=False, rot=(0.0, 0.0, 0.0)) -> np.ndarray:
    """A grid of ``shape`` centred on the world origin: LAS if ``flip_x``, rotated by ``rot`` degrees."""
    d = np.diag(np.broadcast_to(np.asarray(spacing, dtype=float), (3,))).copy()
    if flip_x:
        d[0, 0] *= -1
    A = np.eye(4)
    A[:3, :3] = rotation(rot) @ d
    A[:3, 3] = -A[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return A


def world_coords(affine: np.ndarray, shape) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), -1).astype(float)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def toy_scan(affine, shape, contrast="flair", lesions=(LESION,), noise=0.0, seed=0):
    """(image, lesion truth) sampled on the grid: nested ellipsoids (WM, GM, CSF) and spherical lesions."""
    p = world_coords(affine, shape)
    r = np.sqrt(((p / np.asarray(BRAIN_RADII)) ** 2).sum(-1))
    bg, csf, gm, wm, les = CONTRASTS[contrast]
    img = np.full(shape, bg, dtype=np.float32)
    img[r < 1.0] = csf
    img[r < 0.85] = gm
    img[r < 0.6] = wm
    truth = np.zeros(shape, dtype=bool)
    for c, rad in lesions:
        truth |= ((p - np.asarray(c)) ** 2).sum(-1) <= rad ** 2
    img[truth] = les
    if noise:
        img = img + noise * np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    return img.astype(np.float32), truth


LESION_THRESHOLD = 1.2  # raw FLAIR-toy intensity between the brightest tissue (0.75) and lesions (1.6)
RAW = {"normalisation": "none"}  # preprocessing for the oracle: it thresholds raw intensities


class BrightLesionNet(torch.nn.Module):
    """A voxel-wise 'oracle': lesion where the intensity exceeds ``threshold``, else background
    (classes of the tissue schema; 6 outputs). Flip-equivariant by construction. Use it with the
    :data:`RAW` preprocessing."""

    def __init__(self, threshold: float = LESION_THRESHOLD, num_classes: int = 6, lesion_index: int = 5):
        super().__init__()
        self.threshold = threshold
        self.num_classes = num_classes
        self.lesion_index = lesion_index
        self.dummy = torch.nn.Parameter(torch.zeros(()))  # gives the module a device

    def forward(self, x):
        out = torch.full((x.shape[0], self.num_classes, *x.shape[2:]), -5.0, device=x.device)
        out[:, 0] = 0.0
        out[:, self.lesion_index] = 8.0 * (x[:, 0] - self.threshold)
        return out


def tiny_unet(seed: int = 0, out_channels: int = 6, dropout: float = 0.2):
    from lesionsynth.models import ModelConfig, build_unet

    cfg = ModelConfig(channels=(4, 8, 16), strides=(2, 2), num_res_units=1, out_channels=out_channels,
                      dropout=dropout)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_unet(cfg).eval()
    return model, cfg


def toy_labels(affine, shape, lesions=(LESION,)) -> np.ndarray:
    """Tissue-schema labels of :func:`toy_scan` (0 bg, 1 GM, 2 WM, 4 CSF, 5 lesion)."""
    p = world_coords(affine, shape)
    r = np.sqrt(((p / np.asarray(BRAIN_RADII)) ** 2).sum(-1))
    lab = np.zeros(shape, np.int64)
    lab[r < 1.0] = 4
    lab[r < 0.85] = 1
    lab[r < 0.6] = 2
    for c, rad in lesions:
        lab[((p - np.asarray(c)) ** 2).sum(-1) <= rad ** 2] = 5
    return lab


TRAIN_SPACING = 2.0  # the toy model works on a 2 mm grid (keeps tests fast)


def train_toy_unet(steps: int = 150, seed: int = 0):
    """A tiny UNet trained for a few seconds to segment the FLAIR toy (tissues and a bright lesion)
    on 2 mm grids of random field of view (20-32 voxels) and brain position, with random lesion
    position/size, intensity scale and noise; images z-scored like inference does."""
    from lesionsynth.preprocess import normalise_intensity

    rng = np.random.default_rng(seed)
    model, cfg = tiny_unet(seed, dropout=0.0)
    model.train()
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    weight = torch.tensor([1.0, 1, 1, 1, 1, 5])
    for _ in range(steps):
        shape = tuple(int(v) for v in rng.integers(5, 9, 3) * 4)
        A = make_affine(shape, TRAIN_SPACING)
        A[:3, 3] += rng.uniform(-4, 4, 3)
        xs, ys = [], []
        for _ in range(2):
            les = ((tuple(rng.uniform(-0.5, 0.5, 3) * np.asarray(BRAIN_RADII)), float(rng.uniform(4.5, 8))),)
            img, _ = toy_scan(A, shape, "flair", lesions=les, noise=float(rng.uniform(0, 0.05)),
                              seed=int(rng.integers(1 << 30)))
            xs.append(torch.from_numpy(normalise_intensity(img * rng.uniform(0.5, 2)))[None])
            ys.append(torch.from_numpy(toy_labels(A, shape, les)))
        loss = torch.nn.functional.cross_entropy(model(torch.stack(xs)), torch.stack(ys), weight=weight)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval(), cfg


def dice(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return 2.0 * (a & b).sum() / max(a.sum() + b.sum(), 1)


# ---------------------------------------------------------------- preprocessing unit tests

def test_normalise_zscore_is_invariant_to_linear_rescaling():
    img, _ = toy_scan(make_affine((20, 22, 18)), (20, 22, 18), noise=0.02)
    a = normalise_intensity(img)
    b = normalise_intensity(3.5 * img - 1000.0)  # e.g. a CT-like offset
    np.testing.assert_allclose(a, b, atol=1e-3)
    assert abs(float(a.mean())) < 1e-4
    assert abs(float(a.std()) - 1.0) < 1e-3
    np.testing.assert_array_equal(foreground_mask(img), foreground_mask(3.5 * img - 1000.0))


def test_foreground_box_is_the_head_even_with_background_noise():
    shape = (40, 44, 36)  # 80 mm field of view, the toy brain is 36 x 44 x 32 mm
    A = make_affine(shape, 2.0)
    img, _ = toy_scan(A, shape, noise=0.05)
    brain = toy_scan(A, shape)[0] > 0
    fg = foreground_mask(img, smooth_vox=1.0)
    assert (fg == brain).mean() > 0.97
    box, _ = plan_windows(fg, shape, window=192, divisor=1, margin=0)
    idx = np.argwhere(brain)
    for ax in range(3):
        assert abs(box[ax].start - idx[:, ax].min()) <= 1 and abs(box[ax].stop - 1 - idx[:, ax].max()) <= 1


def test_normalise_clips_outliers_and_keeps_tissue_order():
    img, truth = toy_scan(make_affine((20, 22, 18)), (20, 22, 18))
    hot = img.copy()
    hot[0, 0, 0] = 1000.0  # one hot voxel does not squash the contrast
    n = normalise_intensity(hot)
    assert float(n.max()) < 5.0
    _, csf, gm, wm, les = CONTRASTS["flair"]
    means = [float(n[np.isclose(img, v)].mean()) for v in (csf, wm, gm)]
    assert means == sorted(means)
    assert float(n[truth].mean()) >= means[-1]


def test_working_grid_covers_the_scan_and_keeps_1mm_grids():
    A = make_affine((24, 28, 22), spacing=(2.0, 2.0, 3.0), flip_x=True, rot=(10, -5, 7))
    B, shape = working_grid(A, (24, 28, 22), 1.0)
    np.testing.assert_allclose(voxel_sizes(B), 1.0, atol=1e-9)
    # the scan's corner voxel centres lie inside the working grid's voxel-centre hull
    corners = np.array([[i, j, k, 1] for i in (0, 23) for j in (0, 27) for k in (0, 21)], float)
    vox = (np.linalg.inv(B) @ A @ corners.T).T[:, :3]
    assert (vox > -1e-6).all() and (vox < np.asarray(shape) - 1 + 1e-6).all()
    A1 = make_affine((10, 11, 12), spacing=1.0)
    B1, s1 = working_grid(A1, (10, 11, 12), 1.0)
    assert s1 == (10, 11, 12) and np.allclose(B1, A1)


def test_prepare_reorients_to_ras_and_reslices():
    A = make_affine((24, 28, 22), spacing=2.0, flip_x=True)
    img, _ = toy_scan(A, (24, 28, 22))
    prep = prepare(img, A, Preprocessing(spacing=1.0))
    assert prep.affine[0, 0] > 0 and np.allclose(voxel_sizes(prep.affine), 1.0)
    assert prep.image.shape == (47, 55, 43)


def test_plan_windows_box_and_window_sizes():
    fg = np.zeros((100, 120, 90), bool)
    fg[20:70, 30:100, 10:80] = True
    box, roi = plan_windows(fg, fg.shape, window=64, divisor=8, margin=2)
    assert roi == (56, 64, 64)  # 54 -> 56 (<= 64); 74 and 74 -> capped at the window 64
    assert [s.stop - s.start for s in box] == [56, 74, 74]  # widened to 56 with real content
    assert box[0].start <= 18 and box[0].stop >= 72
    box2, roi2 = plan_windows(None, (30, 31, 17), window=192, divisor=4)
    assert roi2 == (32, 32, 20) and [s.stop for s in box2] == [30, 31, 17]
    assert plan_windows(None, (3, 3, 30), window=8, divisor=8)[1] == (16, 16, 16)  # at least 2 x divisor
    # a 1 mm brain box (152 x 180 x 176 + margins) fits one 160 x 192 x 192 window
    fg3 = np.zeros((193, 229, 193), bool)
    fg3[20:172, 24:204, 4:180] = True
    box3, roi3 = plan_windows(fg3, fg3.shape, window=192, divisor=32, margin=4)
    assert roi3 == (160, 192, 192) and [s.stop - s.start for s in box3] == [160, 192, 192]
    # a little longer than the window along y: one reshaped window of no more voxels than 192^3,
    # instead of two overlapping 192^3 windows
    fg3[:, 22:207] = fg3[:, 24:25]
    box4, roi4 = plan_windows(fg3, fg3.shape, window=192, divisor=32, margin=4)
    assert roi4 == (160, 224, 192) and np.prod(roi4) <= 192 ** 3
    assert [s.stop - s.start for s in box4] == [160, 224, 192]
