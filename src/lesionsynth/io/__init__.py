"""Input/output: NIfTI files, atomic writes and resampling through affines."""

from lesionsynth.io.atomic import atomic_path, write_text_atomic
from lesionsynth.io.nifti import (
    Volume,
    find_images,
    is_nifti,
    load_volume,
    save_volume,
    strip_nifti_suffix,
    voxel_sizes,
)
from lesionsynth.io.resample import reorient_to_ras, resample_to_grid, resample_to_spacing

__all__ = [
    "Volume", "atomic_path", "find_images", "is_nifti", "load_volume", "reorient_to_ras",
    "resample_to_grid", "resample_to_spacing", "save_volume", "strip_nifti_suffix", "voxel_sizes",
    "write_text_atomic",
]
