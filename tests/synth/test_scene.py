"""The scene steps follow the transform contract: apply(params, sample) -> sample, deterministic, pure."""

from __future__ import annotations

import torch

from lesionsynth.lesions import PasteConfig, ProceduralLesionConfig, sample_paste, sample_procedural
from lesionsynth.synth import intensities
from lesionsynth.synth.intensities import IntensityConfig
from lesionsynth.synth.scene import Scene, apply_intensity, apply_paste, apply_procedural_lesion


def _scene(lm):
    target = lm.target_probs_argmax()
    return Scene(image=torch.empty(0), labels=target, affine=lm.affine, mask=target != 0, label_map=lm,
                 lesion_index=5)


def _steps(lm, seed):
    g = torch.Generator().manual_seed(seed)
    s = _scene(lm)
    pp = sample_procedural(g, ProceduralLesionConfig(volume_ml=(20.0, 40.0)), s.mask, lm.affine)
    paste = sample_paste(g, PasteConfig(grade_min=(0.5, 0.5)))
    ip = intensities.sample(g, IntensityConfig(lesion_min_contrast=80.0), lm.num_gen + 1)
    return s, apply_intensity(ip, apply_paste(paste, apply_procedural_lesion(pp, s))), ip


def test_scene_steps_paste_a_labelled_contrasting_lesion_and_replay(tiny_labelmap):
    before, out, ip = _steps(tiny_labelmap, seed=4)
    lesion = out.labels == 5
    assert lesion.sum() > 20 and bool((lesion <= before.mask).all())  # inside the brain
    assert torch.equal(out.labels[~lesion], before.labels[~lesion])  # tissue elsewhere untouched
    assert not (before.labels == 5).any()  # the input scene is not modified
    core = out.image[out.lesion_box][out.lesion > 0.99]  # the Soft-CP probability lives in the lesion's box
    assert abs(float(core.mean()) - ip.means[-1]) < abs(float(out.image[~lesion & before.mask].mean()) - ip.means[-1])
    _, again, _ = _steps(tiny_labelmap, seed=4)
    assert torch.equal(again.image, out.image) and torch.equal(again.labels, out.labels)


def test_without_a_lesion_the_intensity_step_renders_tissue_only(tiny_labelmap):
    s = _scene(tiny_labelmap)
    ip = intensities.sample(torch.Generator().manual_seed(0), IntensityConfig(), tiny_labelmap.num_gen + 1)
    out = apply_intensity(ip, s)
    assert out.image.shape == tuple(tiny_labelmap.shape) and torch.equal(out.labels, s.labels)
    assert torch.equal(out.image, intensities.render_tissue(ip, tiny_labelmap))
