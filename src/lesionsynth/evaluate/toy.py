"""A toy evaluation study: truth label maps and the predictions of simulated "models" of chosen quality.

Used by the tests, the benchmark and the demo to exercise ``lesionsynth evaluate`` without trained models.
Truth cases are tissue-schema label maps (0 background, 1 GM, 2 WM, 3 partial volume, 4 CSF, 5 lesion)
with 1-4 spherical lesions; a model detects each lesion with probability ``detect``, moves its boundary
by a random erosion/dilation and shift, and adds ``false_positives`` spurious blobs per case on average.
Every random draw comes from a ``numpy`` generator seeded per case and model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from lesionsynth.io.nifti import save_volume


@dataclass(frozen=True)
class ToyModel:
    """Quality of a simulated model.

    Attributes:
        detect: probability of detecting each truth lesion.
        boundary: maximum boundary error in voxels (random erosion/dilation of -b..b).
        shift: maximum shift of a detected lesion in voxels.
        false_positives: mean number of false-positive blobs per case (Poisson).
        tissue_noise: fraction of tissue voxels whose class is replaced by a neighbour's.
    """

    detect: float = 0.9
    boundary: int = 1
    shift: int = 1
    false_positives: float = 0.3
    tissue_noise: float = 0.05


DEFAULT_MODELS = {
    "Baseline": ToyModel(detect=0.6, boundary=2, shift=2, false_positives=0.8, tissue_noise=0.12),
    "Synth": ToyModel(detect=0.85, boundary=1, shift=1, false_positives=0.4, tissue_noise=0.08),
    "Augmented": ToyModel(detect=0.95, boundary=1, shift=0, false_positives=0.2, tissue_noise=0.05),
}


def _ball(shape: tuple[int, int, int], centre: np.ndarray, radius: float, spacing: np.ndarray) -> np.ndarray:
    g = np.ogrid[tuple(slice(0, s) for s in shape)]
    d2 = sum(((g[a] - centre[a]) * spacing[a]) ** 2 for a in range(3))
    return d2 <= radius * radius


def toy_truth(shape: tuple[int, int, int], spacing: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A tissue label map (nested ellipsoids) with 1-4 spherical lesions (label 5) in the white matter."""
    grid = np.meshgrid(*[np.linspace(-1, 1, s) for s in shape], indexing="ij", sparse=True)
    r = np.sqrt((grid[0] / 0.85) ** 2 + (grid[1] / 0.95) ** 2 + (grid[2] / 0.8) ** 2)
    lab = np.zeros(shape, dtype=np.uint8)
    for radius, value in ((0.9, 4), (0.8, 1), (0.58, 3), (0.55, 2)):  # CSF, GM, PV, WM, inwards
        lab[r < radius] = value
    wm = np.argwhere(r < 0.45)
    extent_mm = float(min(np.asarray(shape) * spacing))
    for _ in range(int(rng.integers(1, 5))):
        c = wm[rng.integers(len(wm))].astype(np.float64)
        rad = rng.uniform(0.03, 0.09) * extent_mm
        lab[_ball(shape, c, rad, spacing) & (lab > 0)] = 5
    return lab


def toy_prediction(truth: np.ndarray, spacing: np.ndarray, model: ToyModel, rng: np.random.Generator,
                   label: int = 5) -> np.ndarray:
    """A simulated model's prediction of ``truth`` (same grid)."""
    pred = truth.copy()
    brain = truth > 0
    lesion_t = truth == label
    # tissue errors: copy a shifted neighbour's class into a random fraction of voxels
    noisy = (rng.random(truth.shape) < model.tissue_noise) & brain & ~lesion_t
    neighbour = np.roll(truth, shift=tuple(int(s) for s in rng.integers(-1, 2, size=3)), axis=(0, 1, 2))
    pred[noisy] = np.where(neighbour[noisy] == label, pred[noisy], neighbour[noisy])
    # fill truth lesions with white matter, then add the detected (perturbed) lesions back
    pred[lesion_t] = 2
    comps, n = ndimage.label(lesion_t, structure=np.ones((3, 3, 3), bool))
    out = np.zeros(truth.shape, dtype=bool)
    for k in range(1, n + 1):
        if rng.random() >= model.detect:
            continue
        comp = comps == k
        b = int(rng.integers(-model.boundary, model.boundary + 1))
        if b > 0:
            comp = ndimage.binary_dilation(comp, iterations=b)
        elif b < 0:
            eroded = ndimage.binary_erosion(comp, iterations=-b)
            comp = eroded if eroded.any() else comp
        s = tuple(int(v) for v in rng.integers(-model.shift, model.shift + 1, size=3))
        out |= np.roll(comp, s, axis=(0, 1, 2))
    wm = np.argwhere(truth == 2)
    for _ in range(int(rng.poisson(model.false_positives))):
        c = wm[rng.integers(len(wm))].astype(np.float64)
        out |= _ball(truth.shape, c, rng.uniform(1.0, 2.5) * float(spacing.max()), spacing)
    pred[out & brain] = label
    return pred


def make_toy_study(root: str | Path, n_cases: int = 12, shape: tuple[int, int, int] = (32, 32, 32),
                   spacing: tuple[float, float, float] = (2.0, 2.0, 2.0),
                   models: dict[str, ToyModel] | None = None, seed: int = 0) -> tuple[Path, dict[str, Path]]:
    """Write ``root/truth/case_XXX.nii.gz`` and ``root/<model>/case_XXX.nii.gz``.

    Returns:
        The truth folder and {model: prediction folder}.
    """
    root = Path(root)
    models = DEFAULT_MODELS if models is None else models
    sp = np.asarray(spacing, dtype=np.float64)
    affine = np.diag([*sp, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) * sp / 2
    truth_dir = root / "truth"
    pred_dirs = {m: root / m for m in models}
    for i in range(n_cases):
        case = f"case_{i:03d}"
        truth = toy_truth(shape, sp, np.random.default_rng([seed, i]))
        save_volume(truth_dir / f"{case}.nii.gz", truth, affine)
        for j, (name, model) in enumerate(models.items()):
            pred = toy_prediction(truth, sp, model, np.random.default_rng([seed, i, j + 1]))
            save_volume(pred_dirs[name] / f"{case}.nii.gz", pred, affine)
    return truth_dir, pred_dirs
