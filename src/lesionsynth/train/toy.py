"""A toy, learnable dataset: noisy ellipsoid "heads" with bright or dark blob "lesions".

Written as an nnU-Net-style folder, it exercises the real-data path end to end in seconds (tests,
benchmarks, a first smoke run) without any download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lesionsynth.data import write_case, write_dataset_json


def blob_case(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """One image (float32) and its binary lesion label (uint8)."""
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype=np.float32) for s in shape], indexing="ij"))
    centre = (np.asarray(shape, dtype=np.float32) - 1) / 2
    radii = np.asarray(shape, dtype=np.float32) * 0.42
    r = np.sqrt((((grid - centre[:, None, None, None]) / radii[:, None, None, None]) ** 2).sum(0))
    head = (r < 1).astype(np.float32)
    image = head * (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        c = centre + (rng.uniform(-0.45, 0.45, 3) * radii)
        rad = rng.uniform(0.12, 0.22) * min(shape)
        d = np.sqrt(((grid - c[:, None, None, None]) ** 2).sum(0))
        label[(d < rad) & (head > 0)] = 1
    contrast = 1.0 if rng.uniform() < 0.5 else -0.6
    image = image + contrast * label.astype(np.float32) * (1.0 + 0.05 * rng.standard_normal(shape))
    return image.astype(np.float32), label


def write_blob_dataset(root: str | Path, n: int = 4, shape: tuple[int, int, int] = (24, 24, 24),
                       spacing: float = 1.0, seed: int = 0, lesion_value: int = 1,
                       labels: dict[str, int] | None = None, split: str = "Tr",
                       affine: np.ndarray | None = None) -> Path:
    """Write ``n`` toy cases and ``dataset.json``; lesion voxels get ``lesion_value``.

    Args:
        root: output folder.
        n: number of cases.
        shape: volume shape.
        spacing: voxel size (mm) when ``affine`` is not given.
        seed: random seed.
        lesion_value: label value of lesion voxels.
        labels: ``dataset.json`` labels (default ``{background: 0, lesion: lesion_value}``).
        split: ``Tr`` or ``Ts``.
        affine: the volumes' affine (default: RAS, ``spacing`` mm, centred).
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    if affine is None:
        affine = np.diag([spacing, spacing, spacing, 1.0])
        affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2
    for i in range(n):
        image, label = blob_case(rng, shape)
        write_case(root, f"blob_{i:03d}", image, label * np.uint8(lesion_value), affine, split=split)
    write_dataset_json(root, ["T1"], labels or {"background": 0, "lesion": lesion_value}, n)
    return root


def toy_config(real_path: str | Path, **overrides) -> dict:
    """Plain-data training config for the toy dataset: 2 classes, a 3-level 4-8-16 UNet, 16³ crops, CPU.

    Keyword arguments replace top-level keys.
    """
    return {
        "schema": {"name": "lesion", "classes": ["background", "lesion"]},
        "model": {"channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.0},
        "real": {"path": str(real_path), "augment": None, "cache": True},
        "optim": {"lr": 3e-3},
        "epochs": 2, "iterations_per_epoch": 10, "crop_size": [16, 16, 16], "lesion_crop_prob": 0.5,
        "num_workers": 0, "log_every": 1, "device": "cpu", "threads": 1, "deterministic": True,
        **overrides,
    }
