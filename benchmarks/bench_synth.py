"""Seconds per synthetic sample: full MNI label map -> augmented crop, every step on.

One row per implementation of the same chain (labels -> GMM intensities -> affine + elastic
deformation and crop -> bias field -> gamma -> k-space motion -> anisotropic low resolution -> noise ->
blur -> skull-strip -> left-right flip -> percentile clip -> z-score), each with every probability set
to 1 and parameter ranges matched as far as each library allows:

* ``lower-bound``: the minimal sequence of plain torch ops the chain needs, straight-line code, in-place
  where possible (GMM mixing at native resolution, one ``grid_sample`` of the image and one nearest of
  the labels through an affine + elastic grid, bias multiply, gamma, motion FFT pair, low-res
  down/up interpolation, noise, separable blur, mask, flip, clip, z-score). No texture smoothing and
  no lesion pasting (lesionsynth does both on top). See ``make_lower_bound`` for the shortcuts.
* ``lesionsynth``: ``SynthGenerator(cfg).sample(i)`` with every ``p`` = 1 (includes a procedural lesion
  pasted with Soft-CP and a smoothed texture field).
* ``monai``: MONAI dictionary transforms (MONAI has no labels-to-image transform: the GMM is the same
  torch code as the lower bound).
* ``torchio``: ``RandomLabelsToImage`` on the soft (partial-volume) maps, then TorchIO's chain.
* ``cornucopia`` / ``cornucopia-o1``: ``SynthFromLabelTransform`` (hard labels; spline order 3, its
  default, and 1) plus the steps it lacks.

Every row runs in its own subprocess (own peak RSS, same thread count). Each is timed over ``--n``
samples after one warm-up; the table gives the mean seconds per sample and its ratio to the lower bound
and to lesionsynth. Usage::

    .venv/bin/python benchmarks/bench_synth.py [--n 3] [--size 192] [--threads 2] [--device cpu]
    .venv/bin/python benchmarks/bench_synth.py --size 64 --n 1          # quick check
    .venv/bin/python benchmarks/bench_synth.py --rows lower-bound --steps   # per-step lower bound
    .venv/bin/python benchmarks/bench_synth.py --rows lesionsynth --profile  # cProfile of one sample
"""

from __future__ import annotations

import argparse
import cProfile
import json
import math
import os
import platform
import pstats
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ops import blur_shifted  # noqa: E402
from procstat import rss_mb  # noqa: E402

from lesionsynth.augment.skullstrip import _max_filter  # noqa: E402

ROWS = ["lower-bound", "lesionsynth", "monai", "torchio", "cornucopia", "cornucopia-o1"]

# The lesionsynth defaults (SynthConfig / AugmentConfig) every row is matched to.
MEAN = (0.0, 255.0)          # class means, 0-255 scale
STD = (0.0, 16.0)            # class standard deviations
ROT_DEG = 15.0
SCALE = 0.15
SHEAR = 0.012
TRANS_MM = 10.0
ELASTIC_MM = 4.0             # max std of the displacement, mm
ELASTIC_SPACING_MM = 24.0    # control point spacing
BIAS_STD = 0.5               # max std of the log bias field
BIAS_POINTS = (3, 6)         # control points per axis
LOG_GAMMA = 0.4
MOTION_SHIFT_VOX = 4.0
MOTION_TIME = (0.15, 0.85)
THICK_MM = (1.5, 8.0)
NOISE_REL = 0.06             # max noise std, fraction of the intensity range
BLUR_SIGMA = 1.0             # max blur sigma per axis, voxels
CLIP_LO = (0.0, 1.0)         # clip percentiles
CLIP_HI = (99.0, 100.0)


Step = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


# ----------------------------------------------------------------------------------------------------
# shared inputs
# ----------------------------------------------------------------------------------------------------
def load_inputs(cache: Path, device: torch.device):
    """The MNI default label map (cached by the parent) on ``device``: LabelMap, probs, hard labels."""
    lm = torch.load(cache, weights_only=False)
    lm = lm.to(device)
    hard = lm.target_probs_argmax()
    return lm, lm.probs.float(), hard


def _u(r: torch.Tensor, i: int, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * r[i])


def _rotation(deg: list[float], scale: list[float], shear: list[float]) -> np.ndarray:
    a, b, c = (math.radians(x) for x in deg)
    rx = np.array([[1, 0, 0], [0, math.cos(a), -math.sin(a)], [0, math.sin(a), math.cos(a)]])
    ry = np.array([[math.cos(b), 0, math.sin(b)], [0, 1, 0], [-math.sin(b), 0, math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    sh = np.array([[1, shear[0], shear[1]], [0, 1, shear[2]], [0, 0, 1]])
    return rz @ ry @ rx @ sh @ np.diag(scale)


def gmm_image(probs: torch.Tensor, gen: torch.Generator, r: torch.Tensor) -> torch.Tensor:
    """Soft-label GMM at native resolution: sum_k p_k mu_k + (sum_k p_k sigma_k) * n (one noise field)."""
    g = probs.shape[0]
    shape = probs.shape[1:]
    mu = torch.tensor([_u(r, k, *MEAN) for k in range(g)], device=probs.device)
    sd = torch.tensor([_u(r, 8 + k, *STD) for k in range(g)], device=probs.device)
    flat = probs.reshape(g, -1)
    img = (mu @ flat).view(shape)
    tex = torch.randn(shape, generator=gen, device=probs.device)
    return img.addcmul_((sd @ flat).view(shape), tex)


# ----------------------------------------------------------------------------------------------------
# lower bound: plain torch
# ----------------------------------------------------------------------------------------------------
class _Ticker:
    def __init__(self, on: bool, device: torch.device):
        self.on, self.device, self.times = on, device, {}
        self.t = time.perf_counter()

    def __call__(self, name: str) -> None:
        if not self.on:
            return
        _sync(self.device)
        t = time.perf_counter()
        self.times[name] = self.times.get(name, 0.0) + t - self.t
        self.t = t


def make_lower_bound(lm, probs: torch.Tensor, hard: torch.Tensor, size: int, device: torch.device,
                     steps: dict | None = None) -> Step:
    """The chain as straight-line torch code, with every shortcut that keeps the same output distribution.

    Shortcuts: the sampling grid is built at the elastic control points (affine + displacement, a
    few hundred points) and up-sampled once (trilinear interpolation reproduces the affine part
    exactly); the skull-strip masks (brain dilated/eroded by -2..3 voxels) are precomputed once per
    label map and packed as bits next to the labels, so the labels' nearest-neighbour ``grid_sample``
    resamples them for free.
    """
    in_shape = tuple(probs.shape[1:])
    sp = np.abs(lm.affine[:3, :3]).sum(0)
    brain = hard > 0
    idx = brain.nonzero()
    centre = ((idx.min(0).values + idx.max(0).values).float() / 2).cpu().numpy()
    b = brain.float()[None, None]
    radii = list(range(-2, 4))
    # labels (0..7) + one bit per skull-strip radius, exact in float32: one nearest resampling gives both
    lab_in = hard.float()[None, None].clone()
    for j, rad in enumerate(radii):
        m = _max_filter(b, rad) if rad > 0 else 1 - _max_filter(1 - b, -rad) if rad < 0 else b
        lab_in += m * float(8 << j)
    out = (size,) * 3
    n_in = np.array(in_shape, dtype=np.float64) - 1
    nodes = [max(2, math.ceil(s * sp[k] / ELASTIC_SPACING_MM) + 1) for k, s in enumerate(out)]
    # control points in output voxel coordinates relative to the crop centre, (3, n0, n1, n2)
    cp = np.stack(np.meshgrid(*[np.linspace(0, s - 1, n) - (s - 1) / 2 for s, n in zip(out, nodes)],
                              indexing="ij"))
    mm_to_norm = torch.tensor(2 / (n_in * sp), dtype=torch.float32, device=device).view(3, 1, 1, 1)
    lr = int(np.argmax(np.abs(lm.affine[0, :3])))

    def step(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        tick = _Ticker(steps is not None, device)
        gen = torch.Generator(device=device).manual_seed(i)
        r = torch.rand(64, generator=torch.Generator().manual_seed(i)).tolist()
        img = gmm_image(probs, gen, torch.tensor(r))
        tick("gmm")
        # affine + elastic grid at the control points (input voxel -> normalised coords), one up-sampling
        M = _rotation([_u(r, 16 + k, -ROT_DEG, ROT_DEG) for k in range(3)],
                      [1 + _u(r, 19 + k, -SCALE, SCALE) for k in range(3)],
                      [_u(r, 22 + k, -SHEAR, SHEAR) for k in range(3)])
        c = centre + np.array([_u(r, 25 + k, -TRANS_MM, TRANS_MM) for k in range(3)]) / sp
        pts = np.einsum("ij,j...->i...", M, cp) + c.reshape(3, 1, 1, 1)
        g = torch.tensor(2 * pts / n_in.reshape(3, 1, 1, 1) - 1, dtype=torch.float32, device=device)
        g += torch.randn(g.shape, generator=gen, device=device) * (_u(r, 28, 0, ELASTIC_MM) * mm_to_norm)
        # grid_sample's last-dim coordinate k indexes array axis 2 - k
        grid = F.interpolate(g.flip(0)[None], size=out, mode="trilinear", align_corners=True)
        grid = grid.permute(0, 2, 3, 4, 1)
        tick("grid")
        x = F.grid_sample(img[None, None], grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        v = F.grid_sample(lab_in, grid, mode="nearest", padding_mode="zeros", align_corners=True).long()
        lab, mask = v & 7, ((v >> (3 + int(r[45] * len(radii)))) & 1).bool()
        tick("grid_sample x2")
        # bias field
        nb = int(BIAS_POINTS[0] + r[29] * (BIAS_POINTS[1] - BIAS_POINTS[0] + 1))
        f = torch.randn((1, 1, nb, nb, nb), generator=gen, device=device) * _u(r, 30, 0, BIAS_STD)
        x *= F.interpolate(f, size=out, mode="trilinear", align_corners=True).exp_()
        tick("bias")
        # gamma
        lo, hi = torch.aminmax(x)
        rng = (hi - lo).clamp_min(1e-6)
        gamma = math.exp(_u(r, 31, -LOG_GAMMA, LOG_GAMMA))
        x = x.sub_(lo).div_(rng).clamp_min_(0).pow_(gamma).mul_(rng).add_(lo)
        tick("gamma")
        # k-space motion: lines acquired after time t come from a shifted object (linear phase ramp)
        ax = int(r[32] * 3)
        k = torch.fft.fftn(x, dim=(-3, -2, -1))
        n = out[ax]
        first = int(_u(r, 33, *MOTION_TIME) * n)
        sub = k.narrow(2 + ax, first, n - first)  # sequential acquisition: the last lines moved
        for a in range(3):
            fa = torch.fft.fftfreq(out[a], device=device)
            if a == ax:
                fa = fa[first:]
            v = torch.exp(-2j * math.pi * fa * _u(r, 34 + a, -MOTION_SHIFT_VOX, MOTION_SHIFT_VOX))
            view = [1, 1, 1, 1, 1]
            view[2 + a] = -1
            sub.mul_(v.view(view))
        x = torch.fft.ifftn(k, dim=(-3, -2, -1)).abs()
        del k, sub
        tick("motion")
        # anisotropic low resolution: down/up along one axis
        ax = int(r[37] * 3)
        low = list(out)
        low[ax] = max(2, round(out[ax] * sp[ax] / _u(r, 38, *THICK_MM)))
        x = F.interpolate(x, size=low, mode="trilinear", align_corners=True)
        x = F.interpolate(x, size=out, mode="trilinear", align_corners=True)
        tick("lowres")
        lo, hi = torch.aminmax(x)
        noise = torch.randn(x.shape, generator=gen, device=device)
        x.add_(noise, alpha=_u(r, 39, 0, NOISE_REL) * float(hi - lo))
        del noise
        tick("noise")
        x = blur_shifted(x[0, 0], [_u(r, 40 + a, 0, BLUR_SIGMA) for a in range(3)])[None, None]
        tick("blur")
        x = torch.where(mask, x, x.amin())
        tick("skullstrip")
        x, lab = x.flip(2 + lr), lab.flip(2 + lr)
        tick("flip")
        flat = x.view(-1)
        q = torch.tensor([_u(r, 43, *CLIP_LO) / 100, _u(r, 44, *CLIP_HI) / 100], device=device)
        lo, hi = torch.quantile(flat[:: max(1, flat.numel() // 250_000)], q).tolist()
        x.clamp_(lo, hi)
        tick("clip")
        std_, mean_ = torch.std_mean(x)
        x = x.sub_(mean_).div_(std_.clamp_min(1e-6))
        tick("zscore")
        if steps is not None:
            for key, v in tick.times.items():
                steps[key] = steps.get(key, 0.0) + v
        return x[0], lab[0, 0]

    return step


# ----------------------------------------------------------------------------------------------------
# lesionsynth
# ----------------------------------------------------------------------------------------------------
def make_lesionsynth(lm, size: int, device: torch.device) -> Step:
    from lesionsynth.synth import SynthConfig, SynthGenerator

    cfg = SynthConfig()
    a = cfg.augment
    a.spatial.crop_size = (size,) * 3
    a.spatial.p_affine = a.spatial.p_elastic = 1.0
    for sub in (a.bias, a.gamma, a.motion, a.lowres, a.noise, a.blur, a.skullstrip, a.flip):
        sub.p = 1.0
    cfg.lesion_probability = 1.0
    gen = SynthGenerator(cfg, device, label_maps=[lm])

    def step(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = gen.sample(i, seed=0)
        return s.image, s.target

    return step


# ----------------------------------------------------------------------------------------------------
# MONAI
# ----------------------------------------------------------------------------------------------------
def _monai_elastic_magnitude(sigma: float) -> float:
    """Magnitude giving a displacement std of ELASTIC_MM for MONAI's Gaussian-smoothed U(-1, 1) field.

    The std of white U(-1, 1) noise (1/sqrt(3)) smoothed by a normalised 3D Gaussian of width sigma is
    (1/sqrt(3)) * (2 sqrt(pi) sigma)^(-3/2).
    """
    return ELASTIC_MM / ((1 / math.sqrt(3)) * (2 * math.sqrt(math.pi) * sigma) ** -1.5)


def make_monai(lm, probs: torch.Tensor, hard: torch.Tensor, size: int, device: torch.device) -> Step:
    import monai.transforms as mt

    sigma = ELASTIC_SPACING_MM / 3  # smoothing of the full-resolution offset field (voxels, 1 mm)
    lr = int(np.argmax(np.abs(lm.affine[0, :3])))
    keys = ["image", "label"]
    chain = mt.Compose([
        mt.Rand3DElasticd(keys, sigma_range=(sigma, sigma),
                          magnitude_range=(0, _monai_elastic_magnitude(sigma)),
                          spatial_size=(size,) * 3, prob=1.0, rotate_range=(math.radians(ROT_DEG),) * 3,
                          shear_range=SHEAR, translate_range=TRANS_MM, scale_range=SCALE,
                          mode=("bilinear", "nearest"), padding_mode="zeros", device=device),
        mt.RandBiasFieldd("image", degree=3, coeff_range=(0.0, 0.3), prob=1.0),
        mt.RandAdjustContrastd("image", gamma=(math.exp(-LOG_GAMMA), math.exp(LOG_GAMMA)), prob=1.0),
        # no rigid-motion transform in MONAI: the nearest k-space artefact (FFT, truncate, inverse FFT)
        mt.RandGibbsNoised("image", alpha=(0.0, 0.5), prob=1.0),
        # isotropic zoom down/up (MONAI has no one-axis thick-slice simulation)
        mt.RandSimulateLowResolutiond("image", zoom_range=(1 / THICK_MM[1], 1 / THICK_MM[0]), prob=1.0,
                                      device=device),
        mt.RandGaussianNoised("image", std=NOISE_REL * MEAN[1], prob=1.0),
        mt.RandGaussianSmoothd("image", sigma_x=(0, BLUR_SIGMA), sigma_y=(0, BLUR_SIGMA),
                               sigma_z=(0, BLUR_SIGMA), prob=1.0),
        mt.MaskIntensityd("image", mask_key="label"),
        mt.RandFlipd(keys, spatial_axis=lr, prob=1.0),
        mt.ScaleIntensityRangePercentilesd("image", lower=0.5, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
        mt.NormalizeIntensityd("image"),
    ])
    lab = hard[None].float()

    def step(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        gen = torch.Generator(device=device).manual_seed(i)
        r = torch.rand(64, generator=torch.Generator().manual_seed(i))
        img = gmm_image(probs, gen, r)
        chain.set_random_state(seed=i)
        d = chain({"image": img[None], "label": lab})
        return torch.as_tensor(d["image"]), torch.as_tensor(d["label"])[0].long()

    return step


# ----------------------------------------------------------------------------------------------------
# TorchIO (CPU only: its spatial transforms use SimpleITK)
# ----------------------------------------------------------------------------------------------------
def make_torchio(lm, probs: torch.Tensor, hard: torch.Tensor, size: int, device: torch.device) -> Step:
    import torchio as tio

    if device.type != "cpu":
        raise RuntimeError("TorchIO runs on CPU only (SimpleITK resampling)")
    class DropImage(tio.Transform):
        """Remove the partial-volume maps once the image exists (else later steps resample them too)."""

        def __init__(self, name: str):
            super().__init__()
            self.image_name = name

        def apply_transform(self, subject: tio.Subject) -> tio.Subject:
            subject.remove_image(self.image_name)
            return subject

    g = probs.shape[0]
    chain = tio.Compose([
        tio.RandomLabelsToImage(label_key="pv", image_key="t1", mean=[MEAN] * g, std=[STD] * g),
        DropImage("pv"),
        tio.RandomAffineElasticDeformation(
            affine_kwargs={"scales": SCALE, "degrees": ROT_DEG, "translation": TRANS_MM},
            elastic_kwargs={"num_control_points": 9, "max_displacement": 2 * ELASTIC_MM}),
        tio.CropOrPad((size,) * 3),
        tio.RandomBiasField(coefficients=BIAS_STD, order=3),
        tio.RandomGamma(log_gamma=LOG_GAMMA),
        tio.RandomMotion(degrees=0, translation=MOTION_SHIFT_VOX, num_transforms=1),
        tio.RandomAnisotropy(axes=(0, 1, 2), downsampling=THICK_MM),
        tio.RandomNoise(std=(0, NOISE_REL * MEAN[1])),
        tio.RandomBlur(std=(0, BLUR_SIGMA)),
        tio.Mask(masking_method="seg"),
        tio.RandomFlip(axes=("LR",), flip_probability=1.0),
        tio.RescaleIntensity(out_min_max=(0, 1), percentiles=(0.5, 99.5)),
        tio.ZNormalization(),
    ])
    subject = tio.Subject(pv=tio.LabelMap(tensor=probs.cpu(), affine=lm.affine),
                          seg=tio.LabelMap(tensor=hard[None].cpu(), affine=lm.affine))

    def step(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(i)
        out = chain(subject)
        return out["t1"].data, out["seg"].data[0].long()

    return step


# ----------------------------------------------------------------------------------------------------
# cornucopia
# ----------------------------------------------------------------------------------------------------
def make_cornucopia(lm, probs: torch.Tensor, hard: torch.Tensor, size: int, device: torch.device,
                    order: int = 3) -> Step:
    import cornucopia as cc

    fov_mm = float(np.mean(np.array(hard.shape) * np.abs(lm.affine[:3, :3]).sum(0)))
    synth = cc.SynthFromLabelTransform(
        patch=size, translations=TRANS_MM / fov_mm, rotation=ROT_DEG, shears=SHEAR, zooms=SCALE,
        elastic=3 * ELASTIC_MM / fov_mm, elastic_nodes=round(fov_mm / ELASTIC_SPACING_MM) + 1,
        gmm_fwhm=2.0, bias=BIAS_POINTS[1], bias_strength=BIAS_STD, gamma=LOG_GAMMA,
        motion_fwhm=BLUR_SIGMA / 0.4247, resolution=THICK_MM[1], snr=1 / NOISE_REL, order=order,
        device=device)
    motion = cc.SmallIntraScanMotionTransform(translations=MOTION_SHIFT_VOX / size, rotations=0)
    lr = int(np.argmax(np.abs(lm.affine[0, :3])))
    flip = cc.RandomFlipTransform(axes=lr)
    # cornucopia's patch must fit inside the input: pad axes shorter than the crop with background
    pad: list[int] = []
    for n in reversed(hard.shape):
        extra = max(0, size - n)
        pad += [extra // 2, extra - extra // 2]
    lab_in = F.pad(hard, pad)[None]

    def step(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        torch.manual_seed(i)
        random.seed(i)
        img, lab = synth(lab_in)
        img = motion(img)
        img = torch.where(lab > 0, img, img.amin())            # skull-strip
        img, lab = flip(img, lab)
        flat = img.reshape(-1)
        q = torch.tensor([0.005, 0.995], device=img.device, dtype=img.dtype)
        lo, hi = torch.quantile(flat[:: max(1, flat.numel() // 250_000)], q).tolist()
        img = img.clamp(lo, hi)
        std_, mean_ = torch.std_mean(img)
        return (img - mean_) / std_.clamp_min(1e-6), lab[0].long()

    return step


# ----------------------------------------------------------------------------------------------------
# worker: one row in its own process
# ----------------------------------------------------------------------------------------------------
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak from getrusage elsewhere)."""
    rss = rss_mb()
    return rss if rss is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class _RssPeak:
    """Peak RSS while the block runs, polled every 5 ms by a thread (getrusage's peak includes setup)."""

    def __enter__(self) -> _RssPeak:
        self.base = self.peak = _rss_mb()
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss_mb())


def _save_preview(path: Path, img: torch.Tensor, lab: torch.Tensor, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    im = img.float().reshape(img.shape[-3:]).cpu().numpy()
    lb = lab.reshape(lab.shape[-3:]).cpu().numpy()
    fig, axs = plt.subplots(2, 3, figsize=(9, 6))
    for a in range(3):
        sl = [slice(None)] * 3
        sl[a] = im.shape[a] // 2
        axs[0, a].imshow(np.rot90(im[tuple(sl)]), cmap="gray")
        axs[1, a].imshow(np.rot90(lb[tuple(sl)]), cmap="tab10", vmin=0, vmax=9, interpolation="nearest")
        axs[0, a].axis("off")
        axs[1, a].axis("off")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)


def build(row: str, cache: Path, size: int, device: torch.device, steps: dict | None = None) -> Step:
    lm, probs, hard = load_inputs(cache, device)
    if row == "lower-bound":
        return make_lower_bound(lm, probs, hard, size, device, steps)
    if row == "lesionsynth":
        return make_lesionsynth(lm, size, device)
    if row == "monai":
        return make_monai(lm, probs, hard, size, device)
    if row == "torchio":
        return make_torchio(lm, probs, hard, size, device)
    if row == "cornucopia":
        return make_cornucopia(lm, probs, hard, size, device, order=3)
    if row == "cornucopia-o1":
        return make_cornucopia(lm, probs, hard, size, device, order=1)
    raise ValueError(row)


def worker(args: argparse.Namespace) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    try:
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    except ImportError:
        pass
    device = torch.device(args.device)
    steps: dict | None = {} if args.steps else None
    res: dict = {"row": args.worker}
    try:
        step = build(args.worker, Path(args.cache), args.size, device, steps)
        img, lab = step(0)  # warm-up
        _sync(device)
        if steps is not None:
            steps.clear()
        if tuple(img.shape[-3:]) != (args.size,) * 3 or tuple(lab.shape) != (args.size,) * 3:
            raise RuntimeError(f"output shapes {tuple(img.shape)}, {tuple(lab.shape)}, not {args.size}^3")
        if not torch.isfinite(img).all():
            raise RuntimeError("non-finite output")
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            step(1)
            _sync(device)
            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
        times = []
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        with _RssPeak() as rss:
            for i in range(1, args.n + 1):
                t0 = time.perf_counter()
                img, lab = step(i)
                _sync(device)
                times.append(time.perf_counter() - t0)
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / args.n
        res.update(times=times, mean=float(np.mean(times)), cpu=cpu, rss_peak_mb=rss.peak,
                   rss_base_mb=rss.base)
        if args.preview:
            _save_preview(Path(args.preview) / f"{args.worker}.png", img, lab, args.worker)
        if device.type == "cuda":
            res["gpu_peak_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        if steps is not None:
            res["steps"] = {k: v / args.n for k, v in steps.items()}
    except ImportError as e:
        res["skip"] = f"not installed ({e.name})"
    except Exception as e:  # noqa: BLE001 - reported in the table
        res["skip"] = f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}"
    print("RESULT " + json.dumps(res), flush=True)


# ----------------------------------------------------------------------------------------------------
# parent
# ----------------------------------------------------------------------------------------------------
NOTES = {
    "lower-bound": "plain torch, no texture smoothing, no lesion",
    "lesionsynth": "SynthGenerator.sample, every p = 1 (+ procedural lesion, texture smoothing)",
    "monai": "torch GMM; Rand3DElasticd (affine+elastic, one resampling); Gibbs instead of motion; "
             "isotropic low-res",
    "torchio": "RandomLabelsToImage (soft PV maps) + RandomAffineElasticDeformation + 11 transforms",
    "cornucopia": "SynthFromLabelTransform (order 3, hard labels) + SmallIntraScanMotion, mask, flip, "
                  "clip, z-score",
    "cornucopia-o1": "same, spline order 1",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=3, help="timed samples per row (after one warm-up)")
    ap.add_argument("--size", type=int, default=192, help="crop size (voxels per axis)")
    ap.add_argument("--threads", type=int, default=2, help="torch / SimpleITK threads")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rows", nargs="+", default=ROWS, choices=ROWS)
    ap.add_argument("--steps", action="store_true", help="per-step times of the lower bound")
    ap.add_argument("--profile", action="store_true", help="cProfile one sample per row (to stderr)")
    ap.add_argument("--preview", default=None, help="save centre slices of each row's last sample here")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    from lesionsynth.labels import mni_default

    tmp = Path(tempfile.mkdtemp(prefix="bench_synth_"))
    cache = tmp / "mni.pt"
    t0 = time.perf_counter()
    lm = mni_default()
    torch.save(lm, cache)
    t_load = time.perf_counter() - t0
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OPENBLAS_NUM_THREADS=str(args.threads))
    print(f"# Synthetic sample benchmark: MNI label map {tuple(lm.shape)} -> {args.size}^3 crop, "
          "every step on\n")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, device {args.device}, "
          f"torch {torch.__version__}, {args.threads} threads, {args.n} timed samples after 1 warm-up; "
          f"load avg at start {os.getloadavg()[0]:.2f}; label map built in {t_load:.1f} s (not timed)\n")
    results = []
    for row in args.rows:
        cmd = [sys.executable, __file__, "--worker", row, "--cache", str(cache), "--n", str(args.n),
               "--size", str(args.size), "--threads", str(args.threads), "--device", args.device]
        cmd += ["--steps"] if args.steps else []
        cmd += ["--profile"] if args.profile else []
        cmd += ["--preview", str(Path(args.preview).resolve())] if args.preview else []
        print(f"running {row} ...", file=sys.stderr, flush=True)
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True)
        line = [x for x in p.stdout.splitlines() if x.startswith("RESULT ")]
        res = json.loads(line[-1][7:]) if line else {"row": row, "skip": f"worker died (exit {p.returncode})"}
        results.append(res)
    cache.unlink()
    tmp.rmdir()

    base = {r["row"]: r.get("mean") for r in results}
    lb, ls = base.get("lower-bound"), base.get("lesionsynth")
    gpu = args.device.startswith("cuda")
    mem = "GPU peak MiB" if gpu else "peak RSS MiB (+ over inputs)"
    print(f"| row | s/sample (mean) | min-max | CPU s/sample | x lower bound | x lesionsynth | {mem} "
          "| chain |")
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        if "skip" in r:
            print(f"| {r['row']} | skipped | | | | | | {r['skip']} |")
            continue
        m = r["mean"]
        xl = f"{m / lb:.2f}" if lb else "-"
        xs = f"{m / ls:.2f}" if ls else "-"
        extra = r["rss_peak_mb"] - r["rss_base_mb"]
        mm = f"{r['gpu_peak_mb']:.0f}" if gpu else f"{r['rss_peak_mb']:.0f} (+{extra:.0f})"
        span = f"{min(r['times']):.3f}-{max(r['times']):.3f}"
        print(f"| {r['row']} | {m:.3f} | {span} | {r['cpu']:.2f} | {xl} | {xs} | {mm} | {NOTES[r['row']]} |")
    for r in results:
        if r.get("steps"):
            print(f"\nper-step seconds ({r['row']}, mean over {args.n}):\n")
            print("| step | s |\n|---|---:|")
            for k, v in r["steps"].items():
                print(f"| {k} | {v:.3f} |")
            print(f"| total | {sum(r['steps'].values()):.3f} |")
    print(f"\nload avg at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
