"""NIfTI input/output through nibabel, with one-line errors for bad files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

from lesionsynth.errors import InputError
from lesionsynth.io.atomic import atomic_path

NIFTI_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh")


@dataclass
class Volume:
    """A 3D array with its voxel-to-world (RAS, mm) affine.

    Attributes:
        data: array of shape (X, Y, Z) (or (X, Y, Z, C) for multi-channel data).
        affine: 4x4 voxel-to-world matrix.
        path: where it was read from, if anywhere.
    """

    data: np.ndarray
    affine: np.ndarray
    path: Path | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[:3])


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes (mm) along the three array axes."""
    return np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))


def is_nifti(path: str | Path) -> bool:
    name = str(path).lower()
    return any(name.endswith(s) for s in NIFTI_SUFFIXES)


def is_complete_nifti(path: str | Path) -> bool:
    """True when ``path`` is a NIfTI file whose header and whole voxel array read back.

    Outputs are written through a temporary file and a rename, so a file of ours is complete or absent;
    this guards re-runs against files cut short some other way (a copy interrupted, a full disk met by
    an older version, a synced folder). It decompresses the file: milliseconds for a training case.
    """
    try:
        np.asanyarray(nib.load(str(path)).dataobj)
    except Exception:  # noqa: BLE001 - any failure to read back means: not complete
        return False
    return True


def image_ndim(path: str | Path) -> int:
    """Dimensions of an image file's data from its header alone (trailing singleton axes dropped, as
    :func:`load_volume` does); 0 when the header cannot be read (:func:`load_volume` then says why)."""
    try:
        shape = tuple(nib.load(str(path)).shape)
    except Exception:  # noqa: BLE001 - reported by load_volume
        return 0
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return len(shape)


def strip_nifti_suffix(path: str | Path) -> str:
    """File name without its image suffix (``case_001.nii.gz`` -> ``case_001``)."""
    name = Path(path).name
    for s in sorted(NIFTI_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(s):
            return name[: -len(s)]
    return name


def load_volume(
    path: str | Path,
    *,
    dtype: type = np.float32,
    allow_4d: bool = False,
) -> Volume:
    """Read a 3D NIfTI (or MGH) file.

    Args:
        path: the image file.
        dtype: numpy dtype of the returned array.
        allow_4d: accept (X, Y, Z, C) data; a trailing singleton axis is always squeezed.

    Raises:
        InputError: the file is missing, unreadable, not 3D, or contains NaN/inf.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if p.is_dir():
        raise InputError(f"{p}: is a folder, expected a NIfTI file")
    try:
        img = nib.load(str(p))
        data = np.asanyarray(img.dataobj)
    except Exception as e:  # nibabel raises many types for corrupt files
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputError(f"{p}: cannot read as NIfTI ({msg})") from None
    if data.dtype.names is not None:
        raise InputError(f"{p}: RGB/structured voxels ({data.dtype}), expected one number per voxel")
    if np.iscomplexobj(data):
        raise InputError(f"{p}: complex-valued voxels; give the magnitude image")
    if not (np.issubdtype(data.dtype, np.number) or data.dtype == bool):
        raise InputError(f"{p}: voxels of type {data.dtype}, expected numbers")
    while data.ndim > 3 and data.shape[-1] == 1:
        data = data[..., 0]
    if not 3 <= data.ndim <= (4 if allow_4d else 3):
        raise InputError(f"{p}: expected a 3D volume, got {data.ndim}D data of shape {tuple(data.shape)}")
    if min(data.shape[:3]) < 2:
        raise InputError(f"{p}: expected a 3D volume, got shape {tuple(data.shape)}")
    data = np.asarray(data, dtype=dtype)
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise InputError(f"{p}: contains {int((~np.isfinite(data)).sum())} NaN/inf voxel(s)")
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.isfinite(affine).all() or abs(np.linalg.det(affine[:3, :3])) < 1e-8:
        raise InputError(f"{p}: invalid (singular or non-finite) affine")
    return Volume(data=data, affine=affine, path=p)


def save_volume(
    path: str | Path,
    data: np.ndarray,
    affine: np.ndarray,
    *,
    dtype: type | None = None,
) -> Path:
    """Write a NIfTI file atomically (temporary file, then rename).

    Integer label data is stored as uint8/int16 as fits; float data as float32 unless ``dtype`` says.
    """
    arr = np.asarray(data)
    if dtype is None:
        if np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool:
            dtype = np.uint8 if arr.size == 0 or (arr.min() >= 0 and arr.max() < 256) else np.int16
        else:
            dtype = np.float32
    arr = arr.astype(dtype, copy=False)
    img = nib.Nifti1Image(arr, np.asarray(affine, dtype=np.float64))
    img.set_qform(img.affine, code=1)
    img.set_sform(img.affine, code=1)
    img.header.set_data_dtype(dtype)
    path = Path(path)
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return path


def find_images(inputs: list[str | Path] | str | Path) -> list[Path]:
    """Expand files, folders and glob patterns into a sorted list of NIfTI files (hidden files, such as
    the temporaries of a killed write, are skipped in folders and patterns)."""
    import glob

    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and is_nifti(q) and not q.name.startswith(".")))
        elif any(c in str(item) for c in "*?["):  # glob skips hidden files (temporaries of killed writes)
            out.extend(sorted(Path(q) for q in glob.glob(str(item)) if is_nifti(q)))
        else:
            out.append(p)
    return list(dict.fromkeys(out))
