"""Lesion-mask GAN: coarse grid, training steps, resume, sampling determinism, written masks."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative.gan.grid import MaskGrid
from lesionsynth.generative.gan.mask_data import load_coarse_masks, real_batch
from lesionsynth.generative.gan.mask_gan import (
    MaskGANConfig,
    MaskGANTrainer,
    load_mask_generator,
    train_mask_gan,
)
from lesionsynth.generative.gan.mask_sampling import (
    OutputGrid,
    coarse_probs,
    one_hemisphere,
    sample_masks,
    write_masks,
)
from lesionsynth.generative.gan.stats import comparison_table, folder_stats, mask_stats
from lesionsynth.lesions import LesionFolder
from lesionsynth.ops import case_seed

# 16^3 voxels of 4 mm around the conftest lesions (which lie within about -30..30 mm)
GRID = MaskGrid(spacing_mm=4.0, shape=(16, 16, 16), centre_mm=(0.0, 0.0, 0.0))


def tiny_cfg(**kw) -> MaskGANConfig:
    base = dict(grid=GRID, latent_dim=8, gen_channels=(16, 8, 4), critic_channels=(4, 8), n_critic=2,
                batch_size=2, iterations=4, log_every=1, sample_every=2, checkpoint_every=2,
                lr_g=1e-3, lr_d=1e-3, smooth_mm=1.0, min_volume_ml=0.0)
    base.update(kw)
    return MaskGANConfig(**base)


def output_grid() -> OutputGrid:
    """A 2 mm output grid over the same field of view, with a spherical 'brain'."""
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    aff[:3, 3] = -31.0
    g = np.stack(np.meshgrid(*[np.arange(32)] * 3, indexing="ij")).astype(np.float32)
    brain = torch.from_numpy(((g - 15.5) ** 2).sum(0) < 15.0 ** 2)
    return OutputGrid(aff, (32, 32, 32), brain)


def test_gan_grid_geometry():
    a = GRID.affine()
    centre = a @ np.append((np.asarray(GRID.shape) - 1) / 2.0, 1.0)
    assert np.allclose(centre[:3], GRID.centre_mm)
    fine_a, fine_shape = GRID.fine()
    assert fine_shape == (64, 64, 64) and np.allclose(np.diag(fine_a)[:3], 1.0)
    # the mean position of a coarse voxel's 4^3 fine voxels is the coarse voxel's centre
    fine_centres = np.stack(np.meshgrid(*[np.arange(4)] * 3, indexing="ij")).reshape(3, -1).T
    world = (fine_a[:3, :3] @ fine_centres.T).T + fine_a[:3, 3]
    assert np.allclose(world.mean(0), a[:3, 3])


def test_gan_coarse_masks_keep_volume_and_flip(lesion_dir):
    folder = LesionFolder(lesion_dir)
    coarse = load_coarse_masks(folder, GRID, progress=False)
    assert coarse.shape == (3, 1, 16, 16, 16)
    assert 0 < float(coarse.min() + 1) and float(coarse.max()) <= 1.0
    assert ((coarse > 0) & (coarse < 1)).any()  # partial volumes, not a binary mask
    for i in range(3):
        true_ml = folder.load(i, *GRID.fine(), cache=False).sum().item() / 1000.0
        assert coarse[i].sum().item() * GRID.voxel_ml == pytest.approx(true_ml, rel=1e-5)
    # flipping the array of a grid centred on x = 0 is the world flip x -> -x
    fine_a, fine_s = GRID.fine()
    flipped = torch.nn.functional.avg_pool3d(folder.load(0, fine_a, fine_s, flip=True, cache=False)[None, None], 4)
    assert torch.allclose(coarse[0:1].flip(2), flipped, atol=0.02)


def test_gan_coarse_masks_outside_grid_is_an_error(lesion_dir):
    far = MaskGrid(spacing_mm=4.0, shape=(8, 8, 8), centre_mm=(0.0, 200.0, 0.0))
    with pytest.raises(InputError, match="outside the mask GAN grid"):
        load_coarse_masks(lesion_dir, far, progress=False)


def test_gan_real_batch_flips_and_is_seeded():
    masks = torch.zeros(2, 1, 4, 4, 4)
    masks[:, :, 0] = 1.0  # all mass at x = 0
    a = real_batch(masks, 16, 0.5, torch.Generator().manual_seed(1))
    b = real_batch(masks, 16, 0.5, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    flipped = a[:, 0, -1].sum((1, 2)) > 0
    assert 0 < int(flipped.sum()) < 16
    assert not real_batch(masks, 16, 0.0, torch.Generator().manual_seed(1))[:, 0, -1].any()


def test_gan_flip_needs_grid_centred_on_midline():
    off = MaskGrid(spacing_mm=4.0, shape=(16, 16, 16), centre_mm=(5.0, 0.0, 0.0))
    with pytest.raises(Exception, match="x must be 0"):
        MaskGANTrainer(tiny_cfg(grid=off), torch.zeros(2, 1, 16, 16, 16), torch.device("cpu"))


def test_gan_mask_training_steps_move_the_losses(lesion_dir):
    real = load_coarse_masks(lesion_dir, GRID, progress=False)
    tr = MaskGANTrainer(tiny_cfg(n_critic=3), real, torch.device("cpu"), seed=0)
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    first = tr.step()
    for _ in range(5):
        last = tr.step()
    assert all(np.isfinite(v) for v in last.values())
    # the critic learns to separate real masks from the untrained generator's output
    assert last["wasserstein"] > first["wasserstein"]
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters(), strict=True))
    assert tr.iteration == 6


def test_gan_mask_resume_equals_uninterrupted_run(lesion_dir, tmp_path):
    cpu = torch.device("cpu")
    train_mask_gan(tiny_cfg(iterations=4), lesion_dir, tmp_path / "a", cpu, seed=3, progress=False)
    train_mask_gan(tiny_cfg(iterations=2), lesion_dir, tmp_path / "b", cpu, seed=3, progress=False)
    with pytest.raises(InputError, match="--resume"):
        train_mask_gan(tiny_cfg(iterations=4), lesion_dir, tmp_path / "b", cpu, seed=3, progress=False)
    with pytest.raises(ConfigError, match="differs from the run's at 'lr_g'"):  # one resume rule
        train_mask_gan(tiny_cfg(iterations=4, lr_g=5e-4), None, tmp_path / "b", cpu, resume=True, progress=False)
    # resuming uses the run's recorded lesion folder and seed
    train_mask_gan(tiny_cfg(iterations=4), None, tmp_path / "b", cpu, seed=99, resume=True, progress=False)
    ga, _, ca = load_mask_generator(tmp_path / "a")
    gb, _, cb = load_mask_generator(tmp_path / "b")
    assert ca["iteration"] == cb["iteration"] == 4
    for (k, va), vb in zip(ga.state_dict().items(), gb.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows] == ["iteration", "1", "2", "3", "4"]
    assert (tmp_path / "a" / "samples" / "iter_0000002.png").is_file()
    assert (tmp_path / "a" / "samples" / "real.png").is_file()


def test_gan_mask_time_limit_stops_with_a_checkpoint(lesion_dir, tmp_path):
    train_mask_gan(tiny_cfg(iterations=50, checkpoint_every=100), lesion_dir, tmp_path / "r",
                   torch.device("cpu"), progress=False, time_limit_min=0.0)
    _, _, ckpt = load_mask_generator(tmp_path / "r")
    assert ckpt["iteration"] == 1


@pytest.fixture
def tiny_model(lesion_dir, tmp_path):
    train_mask_gan(tiny_cfg(iterations=2), lesion_dir, tmp_path / "run", torch.device("cpu"), progress=False)
    return tmp_path / "run"


def test_gan_mask_sampling_is_deterministic_per_index(tiny_model):
    G, cfg, _ = load_mask_generator(tiny_model)
    # the latent of sample i depends only on (seed, i), not on batching
    p = coarse_probs(G, [case_seed(5, i) for i in range(3)])
    q = coarse_probs(G, [case_seed(5, 2), case_seed(5, 1)])
    assert torch.allclose(p[2], q[0], atol=1e-6) and torch.allclose(p[1], q[1], atol=1e-6)
    assert not torch.allclose(p[0], p[1], atol=1e-4)
    assert not torch.allclose(p[1], coarse_probs(G, [case_seed(6, 1)])[0], atol=1e-4)
    # binary masks: an untrained generator hovers around 0.5, so threshold at its median
    cfg.threshold = float(p[1].median())
    out = output_grid()
    a = {i: m for i, m, _ in sample_masks(G, cfg, [0, 1, 2], seed=5, out=out)}
    b = {i: m for i, m, _ in sample_masks(G, cfg, [2, 1], seed=5, out=out)}
    assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])
    assert a[1].any() and not torch.equal(a[0], a[1])
    x = out.world_x()
    assert x[0, 0, 0] == -31 and x[31, 5, 7] == 31
    for m in a.values():
        assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
        assert not m[~out.brain].any()
        assert not (m[x < 0].any() and m[x > 0].any())  # trained on one side: cut at the midline
    # the same draws without the one-side rule reach across the midline
    cfg.hemisphere = "none"
    free = {i: m for i, m, _ in sample_masks(G, cfg, [0, 1, 2], seed=5, out=out)}
    assert any(m[x < 0].any() and m[x > 0].any() for m in free.values())
    for i in a:
        assert torch.equal(a[i], one_hemisphere(free[i], x)) and torch.equal(a[i], a[i] * free[i])


def test_gan_written_masks_are_a_lesion_folder(tiny_model, tmp_path):
    out = tmp_path / "masks"
    summary = write_masks(tiny_model, out, 3, seed=1, progress=False, output=output_grid())
    files = sorted(out.glob("mask_*.nii.gz"))
    assert [f.name for f in files] == ["mask_00000.nii.gz", "mask_00001.nii.gz", "mask_00002.nii.gz"]
    assert summary["n"] == 3
    folder = LesionFolder(out)
    m = folder.load(0, output_grid().affine, (32, 32, 32))
    assert m.shape == (32, 32, 32)
    # re-running keeps finished files
    before = files[0].stat().st_mtime_ns
    write_masks(tiny_model, out, 4, seed=1, progress=False, output=output_grid())
    assert files[0].stat().st_mtime_ns == before and len(list(out.glob("mask_*.nii.gz"))) == 4
    # a file cut short elsewhere is redrawn (same seed: same mask), not trusted
    ref = np.asarray(nib.load(str(files[1])).dataobj)
    files[1].write_bytes(files[1].read_bytes()[:100])
    write_masks(tiny_model, out, 4, seed=1, progress=False, output=output_grid())
    assert np.array_equal(np.asarray(nib.load(str(files[1])).dataobj), ref)
    assert files[0].stat().st_mtime_ns == before
    stats = folder_stats(out)
    assert len(stats) == 4 and all(s["volume_ml"] > 0 for s in stats)


def test_gan_mask_stats_counts_components():
    m = np.zeros((20, 20, 20), dtype=bool)
    m[2:5, 2:5, 2:5] = True     # 27 voxels
    m[10:12, 10:12, 10:12] = True  # 8 voxels
    m[15, 15, 15] = True        # 1 voxel
    m[16, 16, 16] = True        # diagonal neighbour: same 26-connected component
    aff = np.diag([2.0, 2.0, 2.0, 1.0])
    s = mask_stats(m, aff, min_component_ml=0.05)
    assert s["volume_ml"] == pytest.approx(37 * 8 / 1000)
    assert s["components"] == 3
    assert s["components_big"] == 2  # 27 and 8 voxels x 8 ul >= 0.05 ml; the 2-voxel one (0.016 ml) not
    table = comparison_table({"a": [s], "b": [s, s]})
    assert "| a | 1 | volume (ml) |" in table and "| b | 2 | components (all) |" in table


def test_masks_are_put_on_one_hemisphere_and_bilateral_masks_are_counted():
    """Training data on one side (no mirrored modes to mix); mask-stats counts bilateral masks."""
    import numpy as np
    import torch

    from lesionsynth.generative.gan.grid import MaskGrid
    from lesionsynth.generative.gan.mask_data import to_one_hemisphere
    from lesionsynth.generative.gan.stats import mask_stats

    grid = MaskGrid(spacing_mm=4.0, shape=(8, 8, 8), centre_mm=(0.0, 0.0, 0.0))
    m = torch.zeros(2, 1, 8, 8, 8)
    m[0, 0, 1:3, 2:4, 2:4] = 1  # left (x < 0)
    m[1, 0, 5:7, 2:4, 2:4] = 1  # right
    out = to_one_hemisphere(m, grid, "left")
    assert torch.equal(out[0], m[0]) and torch.equal(out[1], m[1].flip(1))
    aff = grid.affine()
    both = np.zeros((8, 8, 8))
    both[1:3, 2:4, 2:4] = 1
    both[5:7, 2:4, 2:4] = 1
    assert mask_stats(both, aff)["bilateral"] and not mask_stats(out[1, 0].numpy(), aff)["bilateral"]
    assert mask_stats(out[1, 0].numpy(), aff)["centroid_x_mm"] < 0
