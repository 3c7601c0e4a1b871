"""Resampling between voxel grids through their affines (never by array shape).

All functions map *output* voxel indices to *input* voxel indices with ``inv(A_in) @ A_out`` and sample
with :func:`torch.nn.functional.grid_sample`, so they run on CPU or GPU tensors alike.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import torch
import torch.nn.functional as F

from lesionsynth.io.nifti import voxel_sizes


def voxel_map_to_theta(
    vox_out_to_in: np.ndarray | torch.Tensor,
    in_shape: tuple[int, int, int],
    out_shape: tuple[int, int, int],
) -> torch.Tensor:
    """Convert a 4x4 output-voxel -> input-voxel map into a ``grid_sample`` theta (3x4).

    ``grid_sample`` works in normalised coordinates (align_corners=True: -1 and 1 are the centres of the
    first and last voxels) with the coordinate order reversed relative to the array axes. This folds
    both conventions into one matrix.
    """
    M = torch.as_tensor(vox_out_to_in, dtype=torch.float64)
    def norm(shape: tuple[int, ...]) -> torch.Tensor:
        # voxel -> normalised, with axis reversal (array axis k -> grid coordinate 2 - k)
        N = torch.zeros(4, 4, dtype=torch.float64)
        for k, n in enumerate(shape):
            s = 2.0 / max(n - 1, 1)
            N[2 - k, k] = s
            N[2 - k, 3] = -1.0 if n > 1 else 0.0
        N[3, 3] = 1.0
        return N
    theta = norm(in_shape) @ M @ torch.linalg.inv(norm(out_shape))
    return theta[:3]


def sample_grid(
    data: torch.Tensor,
    grid: torch.Tensor,
    mode: str = "linear",
    padding_value: float = 0.0,
) -> torch.Tensor:
    """Sample ``data`` (C, X, Y, Z) or (X, Y, Z) at ``grid`` (1, X', Y', Z', 3).

    ``mode`` is ``linear`` (trilinear) or ``nearest``. Outside the input, values are ``padding_value``.
    """
    squeeze = data.ndim == 3
    x = data[None, None] if squeeze else data[None]
    orig_dtype = x.dtype
    if not x.is_floating_point():
        x = x.float()
    gmode = "bilinear" if mode == "linear" else "nearest"
    if padding_value != 0.0:
        x = x - padding_value
    out = F.grid_sample(x, grid.to(x.dtype), mode=gmode, padding_mode="zeros", align_corners=True)
    if padding_value != 0.0:
        out = out + padding_value
    out = out[0, 0] if squeeze else out[0]
    if not orig_dtype.is_floating_point:
        out = out.round().to(orig_dtype)
    return out


def resample_to_grid(
    data: np.ndarray | torch.Tensor,
    in_affine: np.ndarray,
    out_affine: np.ndarray,
    out_shape: tuple[int, int, int],
    mode: str = "linear",
    padding_value: float = 0.0,
) -> np.ndarray | torch.Tensor:
    """Resample ``data`` from its grid onto another grid, through the affines.

    Args:
        data: (X, Y, Z) or (C, X, Y, Z) numpy array or tensor.
        in_affine: 4x4 voxel-to-world matrix of ``data``.
        out_affine: 4x4 voxel-to-world matrix of the target grid.
        out_shape: spatial shape of the target grid.
        mode: ``linear`` or ``nearest`` (use nearest for label maps).
        padding_value: value outside the input field of view.

    Returns:
        The resampled data, of the same type (numpy or torch) as ``data``.
    """
    is_np = not torch.is_tensor(data)
    t = torch.from_numpy(np.ascontiguousarray(data)) if is_np else data
    in_shape = tuple(t.shape[-3:])
    M = np.linalg.inv(np.asarray(in_affine, dtype=np.float64)) @ np.asarray(out_affine, dtype=np.float64)
    out_shape = tuple(int(s) for s in out_shape)
    if np.allclose(M, np.eye(4), atol=1e-6) and in_shape == out_shape:
        return data
    theta = voxel_map_to_theta(M, in_shape, out_shape).to(device=t.device, dtype=torch.float32)
    grid = F.affine_grid(theta[None], [1, 1, *out_shape], align_corners=True)
    out = sample_grid(t, grid, mode=mode, padding_value=padding_value)
    return out.cpu().numpy() if is_np else out


def reorient_to_ras(data: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reorder/flip array axes to the closest RAS orientation (exact, no interpolation)."""
    ornt = nib.orientations.io_orientation(affine)
    transform = nib.orientations.ornt_transform(ornt, nib.orientations.axcodes2ornt(("R", "A", "S")))
    out = nib.orientations.apply_orientation(data, transform)
    return np.ascontiguousarray(out), affine @ nib.orientations.inv_ornt_aff(transform, data.shape[:3])


def spacing_grid(
    affine: np.ndarray, shape: tuple[int, int, int], spacing: float | tuple[float, float, float] = 1.0,
    cover: bool = False,
) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A grid of the given spacing, with the axis directions of (affine, shape), centred on its field of view.

    Its outermost voxel centres lie within that field of view, or with ``cover`` on or beyond it.
    """
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (3,))
    vs = voxel_sizes(affine)
    extent = vs * (np.asarray(shape) - 1)
    if cover:
        new_shape = tuple(int(np.ceil(e / s - 1e-6)) + 1 for e, s in zip(extent, sp))
    else:
        new_shape = tuple(int(max(1, np.floor(e / s + 1e-6) + 1)) for e, s in zip(extent, sp))
    new = np.eye(4)
    new[:3, :3] = np.asarray(affine)[:3, :3] / vs * sp
    centre = np.asarray(affine) @ np.append((np.asarray(shape) - 1) / 2.0, 1.0)
    new[:3, 3] = centre[:3] - new[:3, :3] @ ((np.asarray(new_shape) - 1) / 2.0)
    return new, new_shape


def resample_to_spacing(
    data: np.ndarray | torch.Tensor,
    affine: np.ndarray,
    spacing: float | tuple[float, float, float] = 1.0,
    mode: str = "linear",
) -> tuple[np.ndarray | torch.Tensor, np.ndarray]:
    """Resample to an isotropic (or given) spacing, keeping orientation and field of view."""
    shape = tuple(data.shape[-3:])
    new_affine, new_shape = spacing_grid(affine, shape, spacing)
    return resample_to_grid(data, affine, new_affine, new_shape, mode=mode), new_affine


def axis_aligned_map(vox_out_to_in: np.ndarray, tol: float = 1e-6) -> tuple[list[int], np.ndarray,
                                                                               np.ndarray] | None:
    """Decompose an output->input voxel map into an axis permutation plus per-axis scale and offset.

    Returns ``(perm, scale, offset)`` with ``in[perm[k]] = scale[k] * out[k] + offset[k]``, or None for
    an oblique map (rotation or shear between the grids).
    """
    R = np.asarray(vox_out_to_in, dtype=np.float64)[:3, :3]
    perm, scale = [], []
    for k in range(3):
        col = R[:, k]
        i = int(np.argmax(np.abs(col)))
        if abs(col[i]) < tol or np.abs(np.delete(col, i)).max() > tol * max(1.0, abs(col[i])):
            return None
        perm.append(i)
        scale.append(col[i])
    if sorted(perm) != [0, 1, 2]:
        return None
    offset = np.asarray(vox_out_to_in, dtype=np.float64)[:3, 3][perm]
    return perm, np.asarray(scale), offset


def take_axis_aligned(data: np.ndarray, perm: list[int], scale: np.ndarray, offset: np.ndarray,
                       out_shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resampling for axis-aligned grids, separable per axis (zeros outside the input).

    The input index of output voxel ``j`` is ``floor(scale * j + offset + 0.5)`` (ties round up).
    """
    src = np.transpose(data, perm)
    out = np.zeros(out_shape, dtype=data.dtype)
    box, take = [], []
    for k in range(3):
        idx = np.floor(scale[k] * np.arange(out_shape[k]) + offset[k] + 0.5 + 1e-6).astype(np.int64)
        valid = np.flatnonzero((idx >= 0) & (idx < src.shape[k]))  # contiguous: idx is monotonic
        if valid.size == 0:
            return out
        box.append(slice(int(valid[0]), int(valid[-1]) + 1))
        take.append(idx[valid[0]:valid[-1] + 1])
    out[tuple(box)] = src[np.ix_(*take)]
    return out


def exact_index_map(vox_out_to_in: np.ndarray, tol: float = 1e-4
                    ) -> tuple[tuple[int, int, int], tuple[bool, bool, bool], np.ndarray] | None:
    """If an output-voxel -> input-voxel map is a signed axis permutation plus a whole-voxel shift (no
    interpolation needed), return (input axis of each output axis, flipped per output axis, shift per
    output axis); else None."""
    aligned = axis_aligned_map(vox_out_to_in, tol)
    if aligned is None:
        return None
    perm, scale, offset = aligned
    if not np.allclose(np.abs(scale), 1.0, atol=tol) or not np.allclose(offset, np.round(offset), atol=tol):
        return None
    return tuple(perm), tuple(bool(s < 0) for s in scale), np.round(offset).astype(np.int64)  # type: ignore[return-value]
