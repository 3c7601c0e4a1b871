"""Known-answer and cross-implementation tests of the evaluation metrics."""

from __future__ import annotations

import itertools
import math
import warnings
from collections import deque

import numpy as np
import pytest
import torch

from lesionsynth.evaluate import metrics as M


def _cube(shape, start, size):
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(s, s + size) for s in start)] = True
    return m


# ----------------------------------------------------------------------------- offset cubes (analytic)
def _offset_cube_distances(n: int, k: int, axis: int, spacing) -> np.ndarray:
    """Directed surface distances from cube A=[0,n)^3 to B = A shifted by k voxels along ``axis``.

    Derived by hand (independent of any distance transform or KD-tree); with ``a`` the shift axis and
    ``u, v`` the two other coordinates of a surface voxel of A:
    - side-face voxels (u or v in {0, n-1}): 0 if a >= k (they lie on B's side faces too), else (k-a)*s_a;
    - bottom face (a = 0, u, v interior): k*s_a (B has no voxel below a = k);
    - top face (a = n-1, u, v interior): min(k*s_a, (n-1-k)*s_a, distance to B's four side faces).
    """
    s = np.asarray(spacing, dtype=float)
    o = [i for i in range(3) if i != axis]
    su, sv, sa = s[o[0]], s[o[1]], s[axis]
    d = []
    for a, u, v in itertools.product(range(n), repeat=3):
        side = u in (0, n - 1) or v in (0, n - 1)
        if not side and a not in (0, n - 1):
            continue  # interior voxel: not on the surface
        if side:
            d.append(0.0 if a >= k else (k - a) * sa)
        elif a == 0:
            d.append(k * sa)
        else:
            d.append(min(k * sa, (n - 1 - k) * sa, min(u, n - 1 - u) * su, min(v, n - 1 - v) * sv))
    return np.asarray(d)


@pytest.mark.parametrize("axis", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_offset_cubes_dice_and_hd95_analytic(axis, k):
    n, spacing = 10, (1.0, 1.5, 3.0)
    shape = (20, 20, 20)
    start = [4, 4, 4]
    a = _cube(shape, start, n)
    start_b = list(start)
    start_b[axis] += k
    b = _cube(shape, start_b, n)
    assert M.dice(a, b) == pytest.approx((n - k) / n)
    # mirror symmetry: B -> A has the same distance multiset as A -> B
    d = _offset_cube_distances(n, k, axis, spacing)
    assert d.size == n**3 - (n - 2) ** 3
    for q in (50, 75, 90, 95, 100):
        assert M.hausdorff(a, b, spacing, q) == pytest.approx(float(np.percentile(d, q)), abs=1e-9)
    # more than 5% of A's surface lies exactly k*s_axis away, so HD95 = k * spacing[axis]
    assert M.hd95(a, b, spacing) == pytest.approx(k * spacing[axis])


def test_parallel_sheets_hd95_is_offset():
    shape, spacing = (8, 12, 14), (0.7, 1.3, 2.1)
    a = np.zeros(shape, bool)
    b = np.zeros(shape, bool)
    a[:, :, 3] = True
    b[:, :, 6] = True
    assert M.hd95(a, b, spacing) == pytest.approx(3 * 2.1)
    assert M.dice(a, b) == 0.0


def test_crop_does_not_change_edges_at_the_array_border():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a = rng.random((9, 10, 11)) < 0.3
        b = rng.random((9, 10, 11)) < 0.3
        big_a = np.zeros((29, 30, 31), bool)
        big_b = np.zeros((29, 30, 31), bool)
        big_a[10:19, 10:20, 10:21] = a
        big_b[10:19, 10:20, 10:21] = b
        # border voxels count as surface in both cases (outside the array is background)
        assert M.hd95(a, b, (1, 2, 3)) == pytest.approx(M.hd95(big_a, big_b, (1, 2, 3)))


def test_volumes_in_ml():
    shape, spacing = (20, 20, 20), (0.5, 2.0, 3.0)  # 3 mm^3 per voxel
    a = _cube(shape, (0, 0, 0), 10)  # 1000 voxels = 3 ml
    b = _cube(shape, (0, 0, 0), 5)   # 125 voxels
    assert M.volume_ml(a, spacing) == pytest.approx(3.0)
    assert M.abs_volume_diff_ml(a, b, spacing) == pytest.approx(875 * 3 / 1000)
    assert M.abs_volume_diff_ml(b, a, spacing) == pytest.approx(875 * 3 / 1000)
    ta = np.where(a, 5, 2)
    pb = np.where(b, 5, 2)
    assert M.volume_error_ml(ta, pb, 5, spacing) == pytest.approx(-875 * 3 / 1000)
    assert M.volume_error_ml(ta, pb, 2, spacing) == pytest.approx(875 * 3 / 1000)


# -------------------------------------------------------------------------------- lesion counts
def test_known_components_ald_and_f1():
    shape = (30, 30, 30)
    t = np.zeros(shape, bool)
    p = np.zeros(shape, bool)
    t[2:5, 2:5, 2:5] = True        # T1
    t[2:5, 8:11, 2:5] = True       # T2
    t[15:20, 15:20, 15:20] = True  # T3
    t[25:28, 2:5, 25:28] = True    # T4 (missed)
    p[3:4, 3:10, 3:4] = True       # P1 bridges T1 and T2: both true positives, P1 not a false positive
    p[18:22, 18:22, 18:22] = True  # P2 overlaps T3
    p[10:12, 25:27, 2:4] = True    # P3 false positive
    p[25:27, 25:27, 10:12] = True  # P4 false positive
    c = M.lesion_counts(t, p)
    assert (c.n_truth, c.n_pred, c.tp, c.fn, c.fp) == (4, 4, 3, 1, 2)
    assert c.f1 == pytest.approx(3 / (3 + (2 + 1) / 2))
    assert M.lesion_wise_f1(t, p) == pytest.approx(2 / 3)
    assert M.abs_lesion_count_diff(t, p) == 0
    p2 = p.copy()
    p2[25:27, 25:27, 10:12] = False
    assert M.abs_lesion_count_diff(t, p2) == 1


def test_26_connectivity():
    t = np.zeros((6, 6, 6), bool)
    t[1, 1, 1] = t[2, 2, 2] = True  # corner contact only: one component with 26-connectivity
    t[4, 4, 4] = True
    assert M.count_components(t) == 2
    assert M.abs_lesion_count_diff(t, np.zeros_like(t)) == 2


# --------------------------------------------------------------------------------- empty masks
def test_every_empty_case():
    z = np.zeros((8, 8, 8), bool)
    m = np.zeros((8, 8, 8), bool)
    m[2:4, 2:4, 2:4] = True
    m[6, 6, 6] = True  # two components, 9 voxels
    sp = (1.0, 2.0, 1.0)  # 2 mm^3 voxels
    # both empty
    assert M.dice(z, z) == 1.0
    assert M.hd95(z, z, sp) == 0.0
    assert M.abs_volume_diff_ml(z, z, sp) == 0.0
    assert M.abs_lesion_count_diff(z, z) == 0
    assert M.lesion_wise_f1(z, z) == 1.0
    # empty truth, non-empty prediction (false positives only)
    assert M.dice(z, m) == 0.0
    assert math.isinf(M.hd95(z, m, sp))
    assert M.abs_volume_diff_ml(z, m, sp) == pytest.approx(9 * 2 / 1000)
    assert M.abs_lesion_count_diff(z, m) == 2
    c = M.lesion_counts(z, m)
    assert (c.tp, c.fn, c.fp) == (0, 0, 2) and c.f1 == 0.0
    # non-empty truth, empty prediction (misses only)
    assert M.dice(m, z) == 0.0
    assert math.isinf(M.hd95(m, z, sp))
    assert M.abs_volume_diff_ml(m, z, sp) == pytest.approx(9 * 2 / 1000)
    c = M.lesion_counts(m, z)
    assert (c.tp, c.fn, c.fp) == (0, 2, 0) and c.f1 == 0.0
    # identical non-empty masks
    assert M.dice(m, m) == 1.0 and M.hd95(m, m, sp) == 0.0 and M.lesion_wise_f1(m, m) == 1.0
    # per-class Dice: class absent from both scores 1, absent from one scores 0
    t = np.zeros((4, 4, 4), int)
    p = np.zeros((4, 4, 4), int)
    p[0, 0, 0] = 2
    assert M.per_class_dice(t, p, [1, 2]) == {1: 1.0, 2: 0.0}


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shapes differ"):
        M.dice(np.zeros((3, 3, 3)), np.zeros((3, 3, 4)))


# ------------------------------------------------------------------- independent implementations
def _random_masks(rng, shape):
    from scipy import ndimage

    seeds_t = rng.random(shape) < rng.uniform(0.003, 0.02)
    seeds_p = rng.random(shape) < rng.uniform(0.003, 0.02)
    t = ndimage.binary_dilation(seeds_t, iterations=int(rng.integers(1, 3)))
    p = ndimage.binary_dilation(seeds_p, iterations=int(rng.integers(0, 3))) | (t & (rng.random(shape) < 0.5))
    return t, p


def test_hd95_agrees_with_monai_on_random_masks():
    from monai.metrics import compute_hausdorff_distance

    rng = np.random.default_rng(0)
    for _ in range(25):
        shape = tuple(int(s) for s in rng.integers(10, 28, size=3))
        t, p = _random_masks(rng, shape)
        if not t.any() or not p.any():
            continue
        sp = rng.uniform(0.4, 3.0, size=3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = compute_hausdorff_distance(torch.from_numpy(p)[None, None], torch.from_numpy(t)[None, None],
                                             percentile=95, spacing=sp.tolist()).item()
        assert M.hd95(t, p, sp) == pytest.approx(ref, rel=1e-5, abs=1e-5)


def test_dice_agrees_with_monai():
    from monai.metrics import compute_dice

    rng = np.random.default_rng(1)
    for _ in range(10):
        t, p = _random_masks(rng, (16, 16, 16))
        tt, pt = (torch.from_numpy(x)[None, None].float() for x in (t, p))
        ref = compute_dice(pt, tt).item()
        assert M.dice(t, p) == pytest.approx(ref, rel=1e-6)


def _bfs_components(mask: np.ndarray) -> list[set[tuple[int, int, int]]]:
    """Connected components by breadth-first search over the 26 neighbours (pure Python reference)."""
    offsets = [d for d in itertools.product((-1, 0, 1), repeat=3) if d != (0, 0, 0)]
    seen: set = set()
    comps = []
    for start in map(tuple, np.argwhere(mask)):
        if start in seen:
            continue
        comp = {start}
        seen.add(start)
        queue = deque([start])
        while queue:
            x, y, z = queue.popleft()
            for dx, dy, dz in offsets:
                q = (x + dx, y + dy, z + dz)
                if q not in seen and all(0 <= q[i] < mask.shape[i] for i in range(3)) and mask[q]:
                    seen.add(q)
                    comp.add(q)
                    queue.append(q)
        comps.append(comp)
    return comps


def test_lesion_counts_agree_with_bfs_reference():
    rng = np.random.default_rng(2)
    for _ in range(30):
        shape = (12, 11, 10)
        t = rng.random(shape) < rng.uniform(0.01, 0.12)
        p = rng.random(shape) < rng.uniform(0.01, 0.12)
        ct, cp = _bfs_components(t), _bfs_components(p)
        pred_vox = set(map(tuple, np.argwhere(p)))
        truth_vox = set(map(tuple, np.argwhere(t)))
        tp = sum(1 for c in ct if c & pred_vox)
        fp = sum(1 for c in cp if not c & truth_vox)
        fn = len(ct) - tp
        ref_f1 = 1.0 if tp + fp + fn == 0 else tp / (tp + (fp + fn) / 2)
        got = M.lesion_counts(t, p)
        assert (got.n_truth, got.n_pred, got.tp, got.fp, got.fn) == (len(ct), len(cp), tp, fp, fn)
        assert got.f1 == pytest.approx(ref_f1)
        assert got.count_diff == abs(len(ct) - len(cp))


def test_per_class_dice_matches_binary_dice():
    rng = np.random.default_rng(4)
    t = rng.integers(0, 6, size=(12, 12, 12))
    p = np.where(rng.random(t.shape) < 0.8, t, rng.integers(0, 6, size=t.shape))
    got = M.per_class_dice(t, p, [1, 2, 3, 4])
    for c in (1, 2, 3, 4):
        assert got[c] == pytest.approx(M.dice(t == c, p == c))
