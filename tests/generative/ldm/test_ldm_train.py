"""Training both stages at tiny size on CPU: the loss goes down, runs resume exactly, errors are one line."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import save_nifti
from lesionsynth.config import load_config
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.generative.ldm import LDMConfig, load_ldm, train_autoencoder, train_diffusion
from lesionsynth.generative.ldm.models import MaskLDM, read_ldm_checkpoint


@pytest.fixture
def pasted_cfg(tmp_path, tiny_labelmap, tiny_affine, lesion_dir):
    """Tiny mask-LDM config over the toy brain with the three sphere lesions (and mirrors) pasted in."""
    path = save_nifti(tmp_path / "labels.nii.gz", tiny_labelmap.target_probs_argmax().numpy().astype(np.int16),
                      tiny_affine)

    def make(**train):
        ae_train = {"iterations": 30, "log_every": 1, "checkpoint_every": 10, **train}
        dm_train = {"iterations": 30, "log_every": 1, "checkpoint_every": 10, **train}
        return load_config(LDMConfig, "ldm-tiny-cpu", overrides={
            "data": {"labels": str(path), "mapping": "identity", "lesions": str(lesion_dir), "flip": True},
            "autoencoder": {"train": ae_train}, "diffusion": {"train": dm_train}})
    return make


def _losses(run) -> np.ndarray:
    import csv

    with open(run / "metrics.csv") as f:
        return np.array([float(r["loss"]) for r in csv.DictReader(f)])


def test_autoencoder_loss_goes_down_and_run_folder(tmp_path, pasted_cfg):
    run = tmp_path / "ae"
    metrics = train_autoencoder(pasted_cfg(), run, device="cpu", progress=False)
    loss = _losses(run)
    assert len(loss) == 30
    assert loss[-5:].mean() < 0.8 * loss[:5].mean()
    assert (run / "config.yaml").is_file() and (run / "samples" / "iter_0000030.png").is_file()
    ck = read_ldm_checkpoint(run, "autoencoder")
    assert ck["iteration"] == 30 and ck["kind"] == "mask"
    assert 0.0 <= metrics["dice_lesion"] <= 1.0


def test_diffusion_loss_goes_down_and_sampling(tmp_path, pasted_cfg):
    cfg = pasted_cfg()
    train_autoencoder(cfg, tmp_path / "ae", device="cpu", progress=False)
    dm = replace(cfg.diffusion, train=replace(cfg.diffusion.train, iterations=40, lr=2e-3))
    res = train_diffusion(replace(cfg, diffusion=dm), tmp_path / "ae", tmp_path / "dm", device="cpu",
                          progress=False)
    loss = _losses(tmp_path / "dm")
    # an untrained UNet predicts 0 (MONAI zero-initialises its output conv): MSE about 1 at the start
    assert loss[:5].mean() > 0.7
    assert loss[-10:].mean() < 0.85 * loss[:5].mean()
    assert res["scale_factor"] > 0
    ldm = load_ldm(tmp_path / "dm")
    assert isinstance(ldm, MaskLDM) and ldm.condition is not None and ldm.condition.label == "lesion"
    maps = ldm.sample([0.0, 1.0, 0.5], [1, 2, 3], guidance=2.0, steps=3)
    assert maps.shape == (3, 20, 20, 20) and int(maps.max()) < 6
    assert (tmp_path / "dm" / "samples" / "iter_0000040.png").is_file()


def test_resume_continues_exactly(tmp_path, pasted_cfg):
    """3 steps + resume to 6 gives the weights of 6 uninterrupted steps (model, Adam state, RNG restored)."""
    full = tmp_path / "full"
    train_autoencoder(pasted_cfg(iterations=6, checkpoint_every=3), full, device="cpu", progress=False)
    part = tmp_path / "part"
    train_autoencoder(pasted_cfg(iterations=3, checkpoint_every=3), part, device="cpu", progress=False)
    with pytest.raises(InputError, match="already holds a run"):
        train_autoencoder(pasted_cfg(iterations=3), part, device="cpu", progress=False)
    train_autoencoder(None, part, device="cpu", resume=True, iterations=6, progress=False)
    a = read_ldm_checkpoint(full, "autoencoder")
    b = read_ldm_checkpoint(part, "autoencoder")
    assert b["iteration"] == 6
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-6)
    np.testing.assert_allclose(_losses(full), _losses(part), rtol=1e-5)

    # the same for the diffusion stage
    train_diffusion(None, full, tmp_path / "d_full", device="cpu", iterations=6, progress=False)
    train_diffusion(None, full, tmp_path / "d_part", device="cpu", iterations=3, progress=False)
    train_diffusion(None, None, tmp_path / "d_part", device="cpu", resume=True, iterations=6, progress=False)
    a = read_ldm_checkpoint(tmp_path / "d_full", "diffusion")
    b = read_ldm_checkpoint(tmp_path / "d_part", "diffusion")
    assert a["scale_factor"] == b["scale_factor"]
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k], rtol=0, atol=1e-6)


def test_training_is_deterministic_from_the_seed(tmp_path, pasted_cfg):
    for name in ("a", "b"):
        train_autoencoder(pasted_cfg(iterations=4), tmp_path / name, device="cpu", progress=False)
    np.testing.assert_array_equal(_losses(tmp_path / "a"), _losses(tmp_path / "b"))


def test_stage_errors(tmp_path, pasted_cfg):
    with pytest.raises(InputError, match="nothing to resume"):
        train_autoencoder(None, tmp_path / "none", device="cpu", resume=True)
    ae = tmp_path / "ae"
    train_autoencoder(pasted_cfg(iterations=2), ae, device="cpu", progress=False)
    with pytest.raises(InputError, match="is a ldm-autoencoder checkpoint, expected a ldm-diffusion checkpoint"):
        load_ldm(ae)
    with pytest.raises(ConfigError, match="already at iteration 2"):
        train_autoencoder(None, ae, device="cpu", resume=True, iterations=1)
    cfg = pasted_cfg(iterations=2)
    other = replace(cfg, autoencoder=replace(cfg.autoencoder, latent_channels=3))
    with pytest.raises(ConfigError, match="section 'autoencoder' differs"):
        train_diffusion(other, ae, tmp_path / "dm", device="cpu")
