"""The physics-based generator: signal equations, reproducibility, truth on the image grid."""

from __future__ import annotations

import numpy as np
import pytest

from lesionsynth.errors import ConfigError, InputError
from lesionsynth.lesions import ProceduralLesionConfig
from lesionsynth.physics import (
    MODALITIES,
    PhysicsConfig,
    PhysicsGenerator,
    SequenceParams,
    load_tissue_table,
    sequences,
    signal,
)


def _props(name, section="tissues"):
    t = load_tissue_table()[section][name]
    return {k: float(np.mean(v)) for k, v in t.items() if isinstance(v, list)}


@pytest.mark.parametrize("kind,order", [
    ("t1w", ["wm", "gm", "csf"]),      # T1w: WM brightest, CSF darkest
    ("t2w", ["csf", "gm", "wm"]),      # T2w: CSF brightest
    ("flair", ["gm", "wm", "csf"]),    # FLAIR: CSF nulled
    ("dwi", ["gm", "wm", "csf"]),      # b = 1000: free water dark
])
def test_signal_equations_give_the_textbook_contrast(kind, order):
    import torch

    p = sequences.sample(torch.Generator().manual_seed(0), kind, csf_t1=_props("csf")["t1"])
    s = [signal(p, **_props(n)) for n in order]
    assert s[0] > s[1] > s[2], (kind, s)


def test_flair_nulls_csf_and_acute_lesions_are_bright_on_dwi():
    flair = SequenceParams("flair", tr=9000, te=120, ti=0.0)
    csf = _props("csf")
    import math

    flair.ti = csf["t1"] * math.log(2 / (1 + math.exp(-flair.tr / csf["t1"])))
    assert signal(flair, **csf) < 0.02 * signal(flair, **_props("gm"))
    dwi = SequenceParams("dwi", tr=6000, te=80, b=1000)
    assert signal(dwi, **_props("acute", "lesions")) > 1.3 * signal(dwi, **_props("gm"))
    assert signal(dwi, **_props("cavity", "lesions")) < signal(dwi, **_props("wm"))


@pytest.fixture
def physics(tiny_labelmap):
    cfg = PhysicsConfig(procedural=ProceduralLesionConfig(volume_ml=(8.0, 20.0), components=(1, 1)),
                        rotation_deg=10.0, slice_mm=(4.0, 5.0))
    return PhysicsGenerator(cfg, label_maps=[tiny_labelmap])


def test_a_scan_is_reproducible_from_its_seed_and_replays_from_its_record(physics):
    a = physics.sample(3, seed=5, modality="flair", resolution="2mm", lesion_type="chronic")
    b = physics.sample(3, seed=5, modality="flair", resolution="2mm", lesion_type="chronic")
    assert np.array_equal(a.image, b.image) and np.array_equal(a.lesion, b.lesion)
    import json

    rec = json.loads(json.dumps(a.params))  # records are plain JSON
    c = physics.render(rec)
    assert np.array_equal(a.image, c.image) and np.allclose(a.affine, c.affine)
    other = physics.sample(3, seed=6, modality="flair", resolution="2mm", lesion_type="chronic")
    assert not np.array_equal(a.image, other.image)


def test_one_subject_is_scanned_many_ways_with_one_lesion(physics):
    scans = {m: physics.sample(1, 0, m, "2mm", "acute") for m in MODALITIES}
    subjects = {(s.params["label_map"], str(s.params["lesion"]["procedural"])) for s in scans.values()}
    assert len(subjects) == 1
    vols = [s.lesion.sum() * abs(np.linalg.det(s.affine[:3, :3])) for s in scans.values()]
    assert max(vols) < 1.3 * min(vols)  # same lesion, other grids
    assert all(s.image.dtype == np.float32 and np.isfinite(s.image).all() for s in scans.values())


def test_lesion_truth_lies_on_the_image_grid_where_the_image_shows_it(physics):
    s = physics.sample(0, 0, "dwi", "thick", "acute")
    assert s.lesion.shape == s.image.shape == s.labels.shape
    assert s.lesion.any() and np.array_equal(s.lesion.astype(bool), s.labels == 5)
    vox = np.linalg.norm(s.affine[:3, :3], axis=0)
    assert sorted(np.round(vox, 3))[-1] >= 4.0 and not np.allclose(s.affine[:3, :3], np.diag(vox))  # thick, oblique
    brain = (s.labels > 0) & (s.labels < 5)
    assert s.image[s.lesion.astype(bool)].mean() > 1.2 * s.image[brain].mean()  # acute lesion bright on DWI


def test_chronic_lesions_are_dark_on_t1w_and_adc_is_in_physical_units(physics):
    t1 = physics.sample(2, 0, "t1w", "2mm", "chronic")
    wm = t1.labels == 2
    assert t1.image[t1.lesion.astype(bool)].mean() < t1.image[wm].mean()
    adc = physics.sample(2, 0, "adc", "2mm", "acute")
    csf = adc.labels == 4
    les = adc.lesion.astype(bool)
    assert adc.image[les].mean() < adc.image[adc.labels == 2].mean()  # restricted diffusion
    assert adc.image[csf].mean() > 1500  # 1e-6 mm^2/s units


def test_bad_physics_config_and_requests_give_one_line_errors(physics, tiny_labelmap):
    with pytest.raises(ConfigError, match="modalities"):
        PhysicsGenerator(PhysicsConfig(modalities=["pet"]), label_maps=[tiny_labelmap])
    with pytest.raises(ConfigError, match="snr"):
        PhysicsGenerator(PhysicsConfig(snr=(30.0, 10.0)), label_maps=[tiny_labelmap])
    with pytest.raises(InputError, match="modality"):
        physics.draw(0, 0, modality="ct")
