import json

import numpy as np
import pytest
import torch

from lesionsynth.augment import AugmentConfig, bias, blur, gamma, lowres, motion, noise, normalize, skullstrip, spatial
from lesionsynth.augment.flip import FlipConfig
from lesionsynth.lesions import PasteConfig, ProceduralLesionConfig
from lesionsynth.synth import SynthConfig, SynthDataset, SynthGenerator


def tiny_cfg(**kw) -> SynthConfig:
    cfg = SynthConfig(procedural=ProceduralLesionConfig(volume_ml=(1.0, 6.0)), **kw)
    cfg.augment.spatial.crop_size = (24, 24, 24)
    cfg.augment.spatial.crop_jitter_mm = 2.0
    return cfg


def quiet_cfg() -> SynthConfig:
    """Every corruption off: the image is the label map's intensities."""
    a = AugmentConfig(spatial=spatial.SpatialConfig(crop_size=None, p_affine=0, p_elastic=0, crop_jitter_mm=0),
                      bias=bias.BiasConfig(p=0), gamma=gamma.GammaConfig(p=0), motion=motion.MotionConfig(p=0),
                      lowres=lowres.LowResConfig(p=0), noise=noise.NoiseConfig(p=0), blur=blur.BlurConfig(p=0),
                      skullstrip=skullstrip.SkullStripConfig(p=0), flip=FlipConfig(p=0),
                      clip=normalize.ClipConfig(lower=(0, 0), upper=(100, 100)), zscore=False)
    return SynthConfig(augment=a, procedural=ProceduralLesionConfig(volume_ml=(3.0, 6.0)),
                       paste=PasteConfig(grade_min=(1.0, 1.0)))


def test_deterministic_from_seed_and_index(tiny_labelmap):
    g1 = SynthGenerator(tiny_cfg(), label_maps=[tiny_labelmap])
    g2 = SynthGenerator(tiny_cfg(), label_maps=[tiny_labelmap])
    a, b = g1.sample(3, seed=11), g2.sample(3, seed=11)
    assert torch.equal(a.image, b.image) and torch.equal(a.target, b.target)
    c = g1.sample(4, seed=11)
    assert not torch.equal(a.image, c.image)
    # a record survives JSON and replays exactly
    rec = json.loads(json.dumps(a.params))
    r = g2.render(rec)
    assert torch.equal(r.image, a.image) and torch.equal(r.target, a.target)


def test_sample_contents(tiny_labelmap):
    g = SynthGenerator(tiny_cfg(), label_maps=[tiny_labelmap])
    for i in range(4):
        s = g.sample(i, 0)
        assert s.image.shape == (1, 24, 24, 24) and s.image.dtype == torch.float32
        assert s.target.shape == (24, 24, 24)
        assert set(torch.unique(s.target).tolist()) <= set(range(6))
        assert (s.target == 5).any(), "every case has a lesion"
        assert torch.isfinite(s.image).all()


def test_per_class_intensity_statistics(tiny_labelmap):
    g = SynthGenerator(quiet_cfg(), label_maps=[tiny_labelmap])
    rec = g.draw(0, 0)
    s = g.render(rec)
    means, stds = rec["intensity"]["means"], rec["intensity"]["stds"]
    probs = tiny_labelmap.probs
    for k in range(5):
        pure = (probs[k] > 0.999) & (s.target != 5)
        if pure.sum() < 200:
            continue
        v = s.image[0][pure]
        assert abs(float(v.mean()) - means[k]) < 3 * stds[k] / np.sqrt(pure.sum().item()) * 8 + 0.5
        assert abs(float(v.std()) - stds[k]) < 0.35 * stds[k] + 0.5
    les = s.target == 5
    core = les & (s.image[0] == s.image[0])  # all lesion voxels
    assert abs(float(s.image[0][core].mean()) - means[-1]) < abs(means[-1] - float(s.image[0][~les].mean()))


def test_lesion_target_and_blend(tiny_labelmap):
    g = SynthGenerator(quiet_cfg(), label_maps=[tiny_labelmap])
    rec = g.draw(1, 0)
    s = g.render(rec)
    lesion = s.target == 5
    vol_ml = float(lesion.sum()) * 8 / 1000
    drawn = sum(rec["lesion"]["procedural"]["volumes_ml"])
    assert 0.5 * drawn < vol_ml <= drawn * 1.2
    # tissue labels elsewhere are the label map's argmax
    assert torch.equal(s.target[~lesion], tiny_labelmap.target_probs_argmax()[~lesion])


def test_dataset_identical_across_workers(tiny_labelmap):
    from torch.utils.data import DataLoader

    cfg = tiny_cfg()
    gen = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    ds = SynthDataset(cfg, seed=2, length=4, generator=gen)
    a = [x for x, _ in DataLoader(ds, batch_size=1, num_workers=0)]
    b = [x for x, _ in DataLoader(ds, batch_size=1, num_workers=2)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_lesion_folder_source_and_miss(tiny_labelmap, lesion_dir, tmp_path):
    cfg = tiny_cfg(lesions=str(lesion_dir))
    g = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    s = g.sample(0, 0)
    assert (s.target == 5).any()
    # a mask outside the brain is a clear error naming the file
    import nibabel as nib

    far = tmp_path / "far"
    far.mkdir()
    m = np.zeros((10, 10, 10), np.float32)
    m[4:6, 4:6, 4:6] = 1
    aff = np.eye(4)
    aff[:3, 3] = 500
    nib.save(nib.Nifti1Image(m, aff), str(far / "out.nii.gz"))
    g2 = SynthGenerator(tiny_cfg(lesions=str(far)), label_maps=[tiny_labelmap])
    from lesionsynth.errors import InputError

    with pytest.raises(InputError, match="out.nii.gz"):
        g2.sample(0, 0)


def test_lesion_min_contrast(tiny_labelmap):
    """The lesion mean keeps its distance to the listed classes only (CSF-like lesions stay possible)."""
    from lesionsynth.errors import ConfigError

    cfg = tiny_cfg()
    cfg.intensity.lesion_min_contrast = 60.0
    g = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    for i in range(20):
        m = g.draw(i, 0)["intensity"]["means"]
        free = min(abs(m[-1] - x) for x in m[1:-1])
        assert free >= 60.0 or free >= max(min(abs(v - x) for x in m[1:-1]) for v in range(256)) - 0.5
    cfg.intensity.lesion_contrast_to = ["grey_matter", "white_matter"]
    g = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    near_csf = 0
    for i in range(40):
        m = g.draw(i, 0)["intensity"]["means"]
        assert min(abs(m[-1] - m[1]), abs(m[-1] - m[2])) >= 60.0
        near_csf += abs(m[-1] - m[4]) < 60.0
    assert near_csf > 0, "contrast to CSF is not enforced"
    cfg.intensity.lesion_contrast_to = ["grey"]
    with pytest.raises(ConfigError, match="grey"):
        SynthGenerator(cfg, label_maps=[tiny_labelmap])


def test_tissue_min_contrast(tiny_labelmap):
    cfg = tiny_cfg()
    cfg.intensity.tissue_min_contrast = 40.0
    g = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    for i in range(20):
        m = g.draw(i, 0)["intensity"]["means"][1:-1]  # GM, WM, PV, CSF
        assert min(abs(a - b) for j, a in enumerate(m) for b in m[:j]) >= 40.0


def test_class_means_restrict_named_classes_and_leave_the_others_draws_unchanged(tiny_labelmap):
    """A fixed T1-like contrast (a curriculum's first stage): the named classes' means fall in their
    ranges, the lesion's too (also under the minimum-contrast rule), the other classes draw as without
    the key, and an unknown class name is one clear error."""
    from lesionsynth.errors import ConfigError

    plain = SynthGenerator(tiny_cfg(), label_maps=[tiny_labelmap])
    cfg = tiny_cfg()
    cfg.intensity.class_means = {"grey_matter": (100.0, 110.0), "white_matter": (160.0, 170.0),
                                 "lesion": (200.0, 255.0)}
    cfg.intensity.lesion_min_contrast = 60.0
    cfg.intensity.lesion_contrast_to = ["grey_matter", "white_matter"]
    g = SynthGenerator(cfg, label_maps=[tiny_labelmap])
    names = [tiny_labelmap.schema.classes[t] for t in tiny_labelmap.gen_to_target]
    for i in range(10):
        m, m0 = g.draw(i, 0)["intensity"]["means"], plain.draw(i, 0)["intensity"]["means"]
        for k, n in enumerate(names):
            lo, hi = cfg.intensity.class_means.get(n, (None, None))
            if lo is None:
                assert m[k] == m0[k], n
            else:
                assert lo <= m[k] <= hi, (n, m[k])
        assert 200.0 <= m[-1] <= 255.0 and m[-1] - max(m[k] for k, n in enumerate(names)
                                                      if n in ("grey_matter", "white_matter")) >= 60.0 - 1e-6
    cfg.intensity.class_means = {"grey": (0.0, 1.0)}
    with pytest.raises(ConfigError, match="class_means"):
        SynthGenerator(cfg, label_maps=[tiny_labelmap])
