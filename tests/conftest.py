"""Shared fixtures: tiny synthetic label maps and lesion masks made on the fly (no downloads)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

torch.set_num_threads(1)  # tiny test volumes: one thread is fastest and avoids oversubscription

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread for every test, restored after it (a test that sets threads, e.g. through
    ``--threads``, does not leak them): tiny tensors gain nothing from threads, and spinning threads on a
    loaded 2-core machine make the tests many times slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def label_cube() -> torch.Tensor:
    """(32, 32, 32) labels 0-3: nested boxes (the augment tests' label map)."""
    lab = torch.zeros(32, 32, 32, dtype=torch.long)
    lab[6:26, 6:26, 6:26] = 1
    lab[10:22, 8:20, 12:24] = 2
    lab[14:18, 14:24, 10:14] = 3
    return lab


def tiny_tissue_probs(shape=(32, 32, 32)) -> np.ndarray:
    """A toy 'brain': nested ellipsoids of CSF, GM, PV, WM with soft edges; (5, X, Y, Z)."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij"))
    r = np.sqrt((grid[0] / 0.85) ** 2 + (grid[1] / 0.95) ** 2 + (grid[2] / 0.8) ** 2)

    def soft(x):
        return 1 / (1 + np.exp(-x / 0.03))

    brain = soft(0.9 - r)
    wm_core = soft(0.55 - r)
    gm_shell = soft(0.8 - r) - wm_core
    csf = brain - soft(0.8 - r)
    pv = np.clip(gm_shell * wm_core * 4, 0, 1) * 0.5
    gm = np.clip(gm_shell - pv / 2, 0, 1)
    wm = np.clip(wm_core - pv / 2, 0, 1)
    bg = np.clip(1 - brain, 0, 1)
    p = np.stack([bg, gm, wm, pv, np.clip(csf, 0, 1)]).astype(np.float32)
    return p / p.sum(0, keepdims=True)


@pytest.fixture
def tiny_affine() -> np.ndarray:
    a = np.diag([2.0, 2.0, 2.0, 1.0])
    a[:3, 3] = -31.0
    return a


@pytest.fixture
def tiny_labelmap(tiny_affine):
    from lesionsynth.labels import TISSUE, LabelMap

    probs = torch.from_numpy(tiny_tissue_probs())
    names = ["background", "grey_matter", "white_matter", "partial_volume", "csf"]
    return LabelMap(affine=tiny_affine, schema=TISSUE, gen_to_target=[TISSUE.index(n) for n in names],
                    gen_names=names, probs=probs, name="tiny")


@pytest.fixture
def lesion_dir(tmp_path, tiny_affine) -> Path:
    """Three binary lesion masks on a different (1.5 mm) grid than the label maps."""
    import nibabel as nib

    d = tmp_path / "lesions"
    d.mkdir()
    aff = np.diag([1.5, 1.5, 1.5, 1.0])
    aff[:3, 3] = -30.0
    for i, (c, r) in enumerate([((14, 20, 22), 5), ((26, 24, 18), 4), ((20, 16, 26), 6)]):
        g = np.stack(np.meshgrid(*[np.arange(40)] * 3, indexing="ij"))
        m = (((g - np.array(c)[:, None, None, None]) ** 2).sum(0) <= r * r).astype(np.float32)
        nib.save(nib.Nifti1Image(m, aff), str(d / f"lesion_{i:02d}.nii.gz"))
    return d


def save_nifti(path, data, affine) -> Path:
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.asarray(data), affine), str(path))
    return Path(path)


# --- kill -9 helpers (tests/synth/test_kill_rerun.py, tests/infer/test_infer_kill_rerun.py) ---
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}


def cmd(*args) -> list[str]:
    return [sys.executable, "-m", "lesionsynth", *map(str, args)]


def kill_during(args: list[str], out: Path, pattern: str, kills: int, seed: int) -> list[int]:
    """Start the command ``kills`` times and SIGKILL it once it has written a new file since that start
    (then a random extra delay), so every kill lands in the middle of real work, not during start-up."""
    rng = random.Random(seed)
    written = []
    for _ in range(kills):
        before = len(list(out.glob(pattern)))
        proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.time()
        while proc.poll() is None and len(list(out.glob(pattern))) <= before and time.time() - t0 < 120:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.1))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        written.append(len(list(out.glob(pattern))))
    return written


def arrays(folder: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(folder)): np.asarray(nib.load(str(p)).dataobj)
            for p in sorted(folder.rglob("*.nii.gz"))}


def no_temporaries(folder: Path) -> None:
    left = [p for p in folder.rglob(".*") if p.is_file()]
    assert not left, left


TINY_TRANSLATOR_YAML = """
arch: pix2pix
spatial_dims: 2
spacing_mm: 2.0
shape: [32, 32, 32]
channels: [4, 8, 16]
disc_channels: 4
disc_layers: 2
batch_size: 2
iterations: 2
log_every: 1
sample_every: 2
checkpoint_every: 2
pairs:
  lesion_volume_ml: [2.0, 6.0]
"""


@pytest.fixture
def pairs_dir(tiny_labelmap, tmp_path):
    """A two-case nnU-Net folder of (toy T1, tissue labels) pairs."""
    from lesionsynth.data import write_case, write_dataset_json
    from lesionsynth.labels import TISSUE

    root = tmp_path / "pairs"
    labels = tiny_labelmap.target_probs_argmax()
    levels = torch.tensor([0.0, 0.55, 0.85, 0.7, 0.2])
    for i in range(2):
        gen = torch.Generator().manual_seed(i)
        image = levels[labels] * (1 + 0.03 * torch.randn(labels.shape, generator=gen))
        write_case(root, f"p{i}", [image.numpy()], labels.numpy(), tiny_labelmap.affine)
    write_dataset_json(root, ["T1"], {c: i for i, c in enumerate(TISSUE.classes)}, 2)
    return root


@pytest.fixture
def translator(pairs_dir, tmp_path):
    """A two-step pix2pix translator trained on ``pairs_dir`` (its config: ``tmp_path/translator.yaml``)."""
    from lesionsynth.cli import main

    cfg = tmp_path / "translator.yaml"
    cfg.write_text(TINY_TRANSLATOR_YAML)
    out = tmp_path / "translator"
    assert main(["gan", "train-translator", "--config", str(cfg), "--pairs", str(pairs_dir), "--out", str(out),
                 "--device", "cpu"]) == 0
    return out
