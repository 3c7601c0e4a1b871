import nibabel as nib
import numpy as np
import pytest
import torch

from lesionsynth.errors import InputError
from lesionsynth.io import load_volume, reorient_to_ras, resample_to_grid, save_volume
from lesionsynth.io.resample import resample_to_spacing


def test_roundtrip_and_atomic(tmp_path):
    a = np.diag([2.0, 1.5, 3.0, 1.0])
    data = np.random.default_rng(0).random((5, 6, 7)).astype(np.float32)
    p = save_volume(tmp_path / "x.nii.gz", data, a)
    v = load_volume(p)
    np.testing.assert_allclose(v.data, data)
    np.testing.assert_allclose(v.affine, a)
    assert [f.name for f in tmp_path.iterdir()] == ["x.nii.gz"]  # no temporary left behind


@pytest.mark.parametrize("kind,msg", [("missing", "not found"), ("corrupt", "cannot read"),
                                      ("2d", "expected a 3D"), ("4d", "4D"), ("nan", "NaN")])
def test_bad_inputs_one_line(tmp_path, kind, msg):
    p = tmp_path / "bad.nii.gz"
    if kind == "corrupt":
        p.write_bytes(b"not a nifti at all")
    elif kind == "2d":
        nib.save(nib.Nifti1Image(np.zeros((4, 4), np.float32), np.eye(4)), str(p))
    elif kind == "4d":
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), np.eye(4)), str(p))
    elif kind == "nan":
        d = np.zeros((4, 4, 4), np.float32)
        d[1, 1, 1] = np.nan
        nib.save(nib.Nifti1Image(d, np.eye(4)), str(p))
    with pytest.raises(InputError) as e:
        load_volume(p)
    assert msg in str(e.value) and "\n" not in str(e.value) and str(p) in str(e.value)


def test_resample_through_affines_integer_shift():
    rng = np.random.default_rng(1)
    data = rng.random((10, 11, 12)).astype(np.float32)
    a_in = np.eye(4)
    a_out = np.eye(4)
    a_out[:3, 3] = [2, 3, 1]  # output voxel (0,0,0) is input voxel (2,3,1)
    out = resample_to_grid(data, a_in, a_out, (5, 5, 5), mode="nearest")
    np.testing.assert_allclose(out, data[2:7, 3:8, 1:6], atol=1e-6)
    out_lin = resample_to_grid(data, a_in, a_out, (5, 5, 5), mode="linear")
    np.testing.assert_allclose(out_lin, data[2:7, 3:8, 1:6], atol=1e-5)


def test_resample_flipped_grid_and_torch():
    data = torch.arange(4 * 5 * 6, dtype=torch.float32).reshape(4, 5, 6)
    a_in = np.eye(4)
    a_out = np.diag([-1.0, 1, 1, 1])
    a_out[0, 3] = 3  # LAS grid over the same voxels
    out = resample_to_grid(data, a_in, a_out, (4, 5, 6), mode="nearest")
    assert torch.equal(out, torch.flip(data, [0]))


def test_reorient_las_to_ras():
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    a = np.diag([-2.0, 2, 2, 1])
    a[0, 3] = 10
    out, new = reorient_to_ras(data, a)
    np.testing.assert_array_equal(out, data[::-1])
    # world coordinate of a voxel is preserved
    np.testing.assert_allclose(new @ [0, 0, 0, 1], a @ [1, 0, 0, 1])


def test_resample_to_spacing_keeps_fov():
    data = np.zeros((20, 20, 20), np.float32)
    out, aff = resample_to_spacing(data, np.eye(4), 2.0)
    assert out.shape == (10, 10, 10)
    centre_in = np.array([9.5, 9.5, 9.5])
    np.testing.assert_allclose((aff @ [4.5, 4.5, 4.5, 1])[:3], centre_in)


def test_stale_temporaries_are_skipped_by_find_images_and_removed_by_a_rerun(tmp_path):
    """A write killed mid-way leaves ``.NAME.XXXX.tmp.nii.gz``: inputs skip it, re-runs delete it."""
    import nibabel as nib

    from lesionsynth.io import find_images
    from lesionsynth.io.atomic import atomic_path, is_temporary, remove_stale_temporaries

    good = tmp_path / "a.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(good))
    with atomic_path(tmp_path / "sub" / "b.nii.gz") as tmp:  # what a kill -9 would leave behind
        stale = tmp.with_name(tmp.name.replace(".tmp", "x.tmp"))
        tmp.write_bytes(b"partial")
        tmp.rename(stale)
        tmp.write_bytes(b"done")
    (tmp_path / "sub" / "c.tmp.nii.gz").write_bytes(b"a user's file, not ours")
    assert is_temporary(stale) and not is_temporary(good)
    assert find_images([tmp_path / "sub"]) == [tmp_path / "sub" / "b.nii.gz", tmp_path / "sub" / "c.tmp.nii.gz"]
    assert find_images([str(tmp_path / "sub" / "*.nii.gz")])[0].name == "b.nii.gz"
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["b.nii.gz", "c.tmp.nii.gz"]


@pytest.mark.parametrize("kind", ["complex", "rgb"])
def test_complex_and_rgb_volumes_are_refused_in_one_line(tmp_path, kind):
    import nibabel as nib

    from lesionsynth.errors import InputError
    from lesionsynth.io import load_volume

    if kind == "complex":
        data = (np.ones((4, 4, 4)) + 1j).astype(np.complex64)
    else:
        data = np.zeros((4, 4, 4), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    p = tmp_path / f"{kind}.nii.gz"
    nib.save(nib.Nifti1Image(data, np.eye(4)), str(p))
    with pytest.raises(InputError, match="complex-valued|RGB"):
        load_volume(p)


@pytest.mark.parametrize("text", ["[1, 2, 3]", '{"labels": [0, 1]}'])
def test_dataset_json_that_is_not_an_object_is_one_line(tmp_path, text):
    from lesionsynth.data.folder import read_dataset
    from lesionsynth.errors import InputError

    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "dataset.json").write_text(text)
    with pytest.raises(InputError, match="dataset.json"):
        read_dataset(tmp_path)


def test_image_ndim_reads_the_header_only(tmp_path):
    from lesionsynth.io.nifti import image_ndim

    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 3), np.float32), np.eye(4)), tmp_path / "soft.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6, 1), np.float32), np.eye(4)), tmp_path / "single.nii.gz")
    (tmp_path / "junk.nii.gz").write_bytes(b"not an image")
    assert image_ndim(tmp_path / "soft.nii.gz") == 4
    assert image_ndim(tmp_path / "single.nii.gz") == 3  # trailing singleton dropped, as load_volume does
    assert image_ndim(tmp_path / "junk.nii.gz") == 0
