"""Micro-benchmarks of the hot steps of lesionsynth's synthetic chain against alternative torch routes.

Each line times the current lesionsynth function and one or more alternatives on the sizes the
generator uses (192^3 crop; the 197x233x189 MNI grid for the native-resolution texture), reports the
median seconds over ``--repeat`` runs after one warm-up, and the max absolute difference to the
current output where the alternative is meant to be equivalent. These numbers are the evidence for
the choices in ``lesionsynth.ops`` / ``lesionsynth.augment`` (and for changing them). Usage::

    .venv/bin/python benchmarks/bench_ops.py [--size 192] [--threads 2] [--repeat 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lesionsynth.augment import lowres, motion, skullstrip, spatial
from lesionsynth.augment.base import Sample
from lesionsynth.io.resample import voxel_map_to_theta
from lesionsynth.ops import FWHM_TO_SIGMA, gaussian_blur

NATIVE = (197, 233, 189)  # the MNI default label map


def timeit(f: Callable[[], torch.Tensor], repeat: int, device: torch.device) -> tuple[float, torch.Tensor]:
    out = f()
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        out = f()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def blur_shifted(x: torch.Tensor, sigma: list[float]) -> torch.Tensor:
    """Separable Gaussian blur of (X, Y, Z) as sums of shifted slices (sampled kernel, replicate edges)."""
    y = x[None, None]
    for ax, s in enumerate(sigma):
        if s < 0.05:
            continue
        rad = max(1, int(math.ceil(3 * s)))
        w = torch.exp(-0.5 * (torch.arange(-rad, rad + 1, dtype=torch.float64) / s) ** 2)
        w = (w / w.sum()).tolist()
        pad = [0] * 6
        pad[2 * (2 - ax)] = pad[2 * (2 - ax) + 1] = rad
        yp = F.pad(y, pad, mode="replicate")
        n = y.shape[2 + ax]
        out = yp.narrow(2 + ax, 0, n) * w[0]
        for j in range(1, 2 * rad + 1):
            out.add_(yp.narrow(2 + ax, j, n), alpha=w[j])
        y = out
    return y[0, 0]


def blur_conv3d(x: torch.Tensor, sigma: list[float]) -> torch.Tensor:
    """Separable Gaussian blur with three ``conv3d`` calls of 1D kernels."""
    y = x[None, None]
    for ax, s in enumerate(sigma):
        rad = max(1, int(math.ceil(3 * s)))
        t = torch.arange(-rad, rad + 1, device=x.device, dtype=x.dtype)
        k = torch.exp(-0.5 * (t / s) ** 2)
        shape = [1, 1, 1, 1, 1]
        shape[2 + ax] = 2 * rad + 1
        pad = [0] * 6
        pad[2 * (2 - ax)] = pad[2 * (2 - ax) + 1] = rad
        y = F.conv3d(F.pad(y, pad, mode="replicate"), (k / k.sum()).view(shape))
    return y[0, 0]


def grid_control_points(p: spatial.SpatialParams, in_affine: np.ndarray,
                        in_shape: tuple[int, int, int], centre_vox: np.ndarray, device: torch.device
                        ) -> torch.Tensor:
    """Same grid as ``spatial.build_grid``, built at the elastic control points and up-sampled once.

    Trilinear interpolation with ``align_corners=True`` reproduces the affine part exactly, so
    affine + displacement can be summed on the coarse grid: one 3-channel up-sampling replaces
    ``affine_grid`` + an up-sampling + an addition over the full output.
    """
    from lesionsynth.io.nifti import voxel_sizes

    sp_in = voxel_sizes(in_affine)
    centre = np.asarray(centre_vox, dtype=np.float64) + np.asarray(p.crop_shift_mm) / sp_in
    V, out_shape, _ = spatial.output_grid(in_affine, in_shape, p, centre)
    sp_out = sp_in * np.diag(V[:3, :3])
    A = np.eye(4)
    A[:3, :3] = np.diag(1.0 / sp_in) @ spatial._affine_matrix(p) @ np.diag(sp_out)
    half = (np.asarray(out_shape) - 1) / 2.0
    A[:3, 3] = centre + np.diag(1.0 / sp_in) @ np.asarray(p.translation_mm) - A[:3, :3] @ half
    theta = voxel_map_to_theta(A, in_shape, out_shape).to(device=device, dtype=torch.float32)
    if p.elastic_std_mm > 0:
        n = [max(2, math.ceil(s * so / p.elastic_spacing_mm) + 1) for s, so in zip(out_shape, sp_out)]
    else:
        n = [2, 2, 2]
    # normalised output coordinates of the control points, grid order (W, H, D) = array axes (2, 1, 0)
    lin = [torch.linspace(-1, 1, k, device=device) for k in n]
    zz, yy, xx = torch.meshgrid(lin[0], lin[1], lin[2], indexing="ij")
    base = torch.stack([xx, yy, zz, torch.ones_like(xx)], -1)  # (n0, n1, n2, 4)
    coarse = (base @ theta.T).permute(3, 0, 1, 2)[None]        # (1, 3, n0, n1, n2)
    if p.elastic_std_mm > 0:
        gen = torch.Generator(device=device).manual_seed(p.elastic_seed)
        d = torch.randn((1, 3, *n), generator=gen, device=device) * p.elastic_std_mm
        scale = torch.tensor([2.0 / (max(in_shape[k], 2) - 1) / sp_in[k] for k in range(3)],
                             device=device, dtype=torch.float32)
        coarse = coarse + (d * scale.view(1, 3, 1, 1, 1)).flip(1)
    grid = F.interpolate(coarse, size=out_shape, mode="trilinear", align_corners=True)
    return grid.permute(0, 2, 3, 4, 1)


def motion_slab(p: motion.MotionParams, image: torch.Tensor) -> torch.Tensor:
    """Same artefact as ``motion.apply``: the phase ramp is separable, so multiply only the moved lines
    (at most two contiguous slabs) by three 1D phase vectors instead of building a full complex ramp."""
    if not p.applied:
        return image
    dev = image.device
    shape = image.shape[-3:]
    k = torch.fft.fftn(image.float(), dim=(-3, -2, -1))
    n = shape[p.axis]
    order = torch.fft.fftshift(torch.arange(n)).tolist()
    moved = sorted(order[int(p.time * n):])
    runs: list[tuple[int, int]] = []
    for i in moved:
        if runs and runs[-1][1] == i:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    vecs = []
    for ax in range(3):
        f = torch.fft.fftfreq(shape[ax], device=dev)
        view = [1, 1, 1]
        view[ax] = -1
        vecs.append(torch.exp(-2j * torch.pi * f * p.shift_vox[ax]).view(view))
    for a, b in runs:
        sub = k.narrow(p.axis, a, b - a)
        for ax in range(3):
            sub.mul_(vecs[ax].narrow(ax, a, b - a) if ax == p.axis else vecs[ax])
    return torch.fft.ifftn(k, dim=(-3, -2, -1)).abs().to(image.dtype)


def lowres_area(p: lowres.LowResParams, image: torch.Tensor, spacing: np.ndarray) -> torch.Tensor:
    """Thick slices as box averages (``area`` down-sampling) instead of Gaussian blur + trilinear."""
    shape = tuple(image.shape[-3:])
    low = list(shape)
    low[p.axis] = max(2, int(round(shape[p.axis] * float(spacing[p.axis]) / p.thickness_mm)))
    x = F.interpolate(image[None, None], size=tuple(low), mode="area")
    return F.interpolate(x, size=shape, mode="trilinear", align_corners=True)[0, 0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=192)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    S = (args.size,) * 3
    g = torch.Generator(device=dev).manual_seed(0)
    # a smooth test image on a 0-255 scale (white noise would exaggerate the differences between routes)
    x = gaussian_blur(torch.rand(S, generator=g, device=dev), 2.0)
    x = (x - x.min()) / (x.max() - x.min()) * 255
    nat = torch.randn(NATIVE, generator=g, device=dev)
    rows: list[tuple[str, str, float, float | None]] = []

    def add(step: str, name: str, f: Callable[[], torch.Tensor], ref: torch.Tensor | None = None
            ) -> torch.Tensor:
        t, out = timeit(f, args.repeat, dev)
        diff = None if ref is None else float((out.float() - ref.float()).abs().max())
        rows.append((step, name, t, diff))
        return out

    # 1. blur of the crop, sigma <= 1 voxel (augment.blur)
    sig = [0.9, 0.7, 0.8]
    ref = add("blur crop, sigma<=1", "ops.gaussian_blur (auto = FFT)", lambda: gaussian_blur(x, sig))
    add("blur crop, sigma<=1", "MONAI separable_filtering",
        lambda: gaussian_blur(x, sig, method="spatial"), ref)
    add("blur crop, sigma<=1", "shifted-slice sums", lambda: blur_shifted(x, sig), ref)
    add("blur crop, sigma<=1", "conv3d with 1D kernels", lambda: blur_conv3d(x, sig), ref)
    # 2. texture smoothing at native resolution (synth.intensities, FWHM <= 2 voxels)
    s = 2.0 * FWHM_TO_SIGMA
    ref = add("texture blur 197x233x189", "ops.gaussian_blur (auto = FFT)", lambda: gaussian_blur(nat, s))
    add("texture blur 197x233x189", "shifted-slice sums", lambda: blur_shifted(nat, [s] * 3), ref)
    # 3. low resolution (augment.lowres), 6 mm slices on axis 0
    lp = lowres.LowResParams(axis=0, thickness_mm=6.0)
    one = np.ones(3)
    ref = add("lowres 6 mm", "augment.lowres.apply (FFT blur + down/up)", lambda: lowres.apply(lp, Sample(x)).image)
    sl = math.sqrt(6.0**2 - 1) * FWHM_TO_SIGMA
    add("lowres 6 mm", "shifted-slice blur + down/up",
        lambda: F.interpolate(F.interpolate(blur_shifted(x, [sl, 0, 0])[None, None],
                                            size=(round(args.size / 6), *S[1:]), mode="trilinear",
                                            align_corners=True), size=S, mode="trilinear",
                              align_corners=True)[0, 0], ref)
    add("lowres 6 mm", "area down + trilinear up (different model: box profile)",
        lambda: lowres_area(lp, x, one), ref)
    # 4. k-space motion (augment.motion)
    mp = motion.MotionParams(applied=True, axis=1, time=0.4, shift_vox=[2.5, -3.0, 1.5])
    ref = add("motion", "augment.motion.apply (full complex ramp)", lambda: motion.apply(mp, Sample(x)).image)
    add("motion", "separable phase on the moved slab only", lambda: motion_slab(mp, x), ref)
    # 5. sampling grid (augment.spatial), affine + elastic
    sp = spatial.SpatialParams(crop_size=S, rotation_deg=[10.0, -7.0, 4.0], scaling=[1.1, 0.9, 1.05],
                               shear=[0.01, 0, -0.01], translation_mm=[3.0, -2.0, 5.0], elastic_std_mm=3.0,
                               elastic_seed=7)
    aff = np.diag([-1.0, 1.0, 1.0, 1.0])
    centre = (np.asarray(NATIVE) - 1) / 2
    ref = add("grid (crop)", "augment.spatial.build_grid (affine_grid + up-sampled field)",
              lambda: spatial.build_grid(sp, aff, NATIVE, centre, dev)[0])
    grid = add("grid (crop)", "control points, one up-sampling",
               lambda: grid_control_points(sp, aff, NATIVE, centre, dev), ref)
    # 6. resampling and skull-strip (augment.spatial / augment.skullstrip)
    lab = (nat > 0).float()
    two = torch.stack([lab, lab])[None]
    add("resample", "grid_sample bilinear, 1 channel",
        lambda: F.grid_sample(nat[None, None], grid, mode="bilinear", align_corners=True))
    add("resample", "grid_sample nearest, 1 channel (labels)",
        lambda: F.grid_sample(lab[None, None], grid, mode="nearest", align_corners=True))
    add("resample", "grid_sample nearest, 2 channels (labels + mask)",
        lambda: F.grid_sample(two, grid, mode="nearest", align_corners=True))
    lab_out = (x > 128).long()
    add("skull-strip mask", "augment.skullstrip.brain_mask, radius 3 (3 max-pools)",
        lambda: skullstrip.brain_mask(lab_out, 0, 3))
    add("flip", "torch.flip of image + labels", lambda: torch.stack([x.flip(0), lab_out.flip(0).float()]))

    print(f"# lesionsynth op micro-benchmarks ({platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.device}, torch {torch.__version__}, {args.threads} threads, "
          f"median of {args.repeat}; load avg {os.getloadavg()[0]:.2f})\n")
    print("| step | implementation | s | max abs diff to first |\n|---|---|---:|---:|")
    for step, name, t, diff in rows:
        d = "" if diff is None else f"{diff:.2g}"
        print(f"| {step} | {name} | {t:.3f} | {d} |")


if __name__ == "__main__":
    main()
