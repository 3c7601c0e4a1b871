"""Label -> image translators: paired data, training steps, resume, rendering (tiny sizes, CPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionsynth.data import write_case, write_dataset_json
from lesionsynth.errors import InputError
from lesionsynth.generative.gan.pairs import (
    DeformConfig,
    PairConfig,
    PairSampler,
    base_from_tensors,
    dataset_bases,
    one_hot,
)
from lesionsynth.generative.gan.translator import (
    TranslatorConfig,
    TranslatorTrainer,
    load_translator,
    render_volume,
    train_translator,
)
from lesionsynth.labels import TISSUE

# background, grey matter, white matter, partial volume, csf (T1-like ordering)
LEVELS = torch.tensor([0.0, 0.55, 0.85, 0.7, 0.2])


def tiny_pair(labelmap) -> tuple[torch.Tensor, torch.Tensor]:
    labels = labelmap.target_probs_argmax()
    gen = torch.Generator().manual_seed(0)
    image = LEVELS[labels] * (1 + 0.03 * torch.randn(labels.shape, generator=gen))
    return labels, image.clamp(0, 1)


def tiny_sampler(labelmap, dims=2, shape=(32, 32, 32), **pair_kw) -> PairSampler:
    labels, image = tiny_pair(labelmap)
    base = base_from_tensors(image, labels, labelmap.affine, TISSUE, "tiny")
    kw = dict(lesion_volume_ml=(2.0, 6.0), deform=DeformConfig(rotation_deg=5, elastic_max_mm=2))
    kw.update(pair_kw)
    return PairSampler(PairConfig(**kw), TISSUE, 2.0, shape, dims, bases=[base])


def tiny_cfg(arch="pix2pix", dims=2, **kw) -> TranslatorConfig:
    base = dict(arch=arch, spatial_dims=dims, spacing_mm=2.0, shape=(32, 32, 32), batch_size=2, iterations=3,
                log_every=1, sample_every=2, checkpoint_every=2, disc_channels=4, disc_layers=2)
    if arch == "pix2pix":
        base.update(channels=(4, 8, 16))
    else:
        base.update(channels=(16, 8, 4), spade_hidden=8, num_d=2, disc_layers=1, adversarial="hinge",
                    fm_weight=10.0, l1_weight=10.0)
    base.update(kw)
    return TranslatorConfig(**base)


def test_gan_pairs_shapes_lesions_and_seeding(tiny_labelmap):
    s3 = tiny_sampler(tiny_labelmap, dims=3, p_lesion=1.0)
    labels, image = s3.sample(torch.Generator().manual_seed(4))
    assert labels.shape == image.shape == (32, 32, 32)
    assert labels.dtype == torch.int64 and image.min() >= -1 and image.max() <= 1
    lesion = labels == TISSUE.lesion_index
    assert lesion.any()
    # the simulated lesion is darker than the white matter (T1 hypointense)
    wm = labels == TISSUE.index("white_matter")
    assert image[lesion].mean() < image[wm].mean() - 0.2
    again = s3.sample(torch.Generator().manual_seed(4))
    assert torch.equal(again[0], labels) and torch.equal(again[1], image)
    other = s3.sample(torch.Generator().manual_seed(5))
    assert not torch.equal(other[1], image)
    s2 = tiny_sampler(tiny_labelmap, dims=2, p_lesion=1.0, p_lesion_slice=1.0)
    lab2, img2 = s2.batch(torch.Generator().manual_seed(1), 3)
    assert lab2.shape == (3, 32, 32) and img2.shape == (3, 1, 32, 32)
    assert all((lab2[i] == TISSUE.lesion_index).any() for i in range(3))
    none = tiny_sampler(tiny_labelmap, dims=3, lesions="none")
    assert not (none.sample(torch.Generator().manual_seed(4))[0] == TISSUE.lesion_index).any()


def test_gan_pairs_labels_and_image_are_deformed_together(tiny_labelmap):
    s = tiny_sampler(tiny_labelmap, dims=3, lesions="none", deform=DeformConfig(rotation_deg=15, scaling=0.1))
    labels, image = s.sample(torch.Generator().manual_seed(2))
    base_labels, _ = tiny_pair(tiny_labelmap)
    assert not torch.equal(labels, base_labels)
    # every class keeps its intensity after the paired deformation: image is a function of labels
    for k in range(5):
        sel = labels == k
        if sel.sum() > 50:
            assert abs(float(image[sel].median()) - (2 * float(LEVELS[k]) / 0.85 - 1).__float__()) < 0.25


def test_gan_dataset_folder_pairs(tiny_labelmap, tmp_path):
    labels, image = tiny_pair(tiny_labelmap)
    for i in range(2):
        write_case(tmp_path, f"c{i}", [image.numpy() * 1000], labels.numpy(), tiny_labelmap.affine)
    write_dataset_json(tmp_path, ["T1"], {c: i for i, c in enumerate(TISSUE.classes)}, 2)
    bases = dataset_bases(tmp_path, 2.0, TISSUE)
    assert len(bases) == 2 and bases[0].image.max() <= 1.0
    assert bases[0].csf < bases[0].gm
    assert len(dataset_bases(tmp_path, 2.0, TISSUE, max_cases=1)) == 1
    write_dataset_json(tmp_path, ["T1"], {"background": 0, "stroke": 1}, 2)
    with pytest.raises(InputError, match="'stroke' is not a class"):
        dataset_bases(tmp_path, 2.0, TISSUE)


@pytest.mark.parametrize("arch", ["pix2pix", "spade"])
def test_gan_translator_steps_move_the_losses(tiny_labelmap, arch):
    cfg = tiny_cfg(arch, dims=2, lr_g=1e-3, lr_d=1e-3)
    tr = TranslatorTrainer(cfg, torch.device("cpu"), seed=0, sampler=tiny_sampler(tiny_labelmap))
    g0 = [p.detach().clone() for p in tr.G.parameters()]
    d0 = [p.detach().clone() for p in tr.D.parameters()]
    losses = [tr.step() for _ in range(8)]
    assert all(np.isfinite(v) for row in losses for v in row.values())
    assert np.mean([r["l1"] for r in losses[-3:]]) < np.mean([r["l1"] for r in losses[:3]])
    assert any(not torch.equal(a, b) for a, b in zip(g0, tr.G.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, tr.D.parameters(), strict=True))
    if arch == "spade":
        assert losses[-1]["fm"] > 0


def test_gan_translator_3d_step_and_render(tiny_labelmap):
    cfg = tiny_cfg("pix2pix", dims=3, shape=(16, 16, 16), batch_size=1)
    tr = TranslatorTrainer(cfg, torch.device("cpu"), sampler=tiny_sampler(tiny_labelmap, 3, (16, 16, 16)))
    row = tr.step()
    assert np.isfinite(row["loss_g"])
    labels = torch.randint(0, 6, (16, 16, 16))
    out = render_volume(tr.G, labels, 6, 3)
    assert out.shape == (16, 16, 16)


def test_gan_render_2d_translator_slice_by_slice():
    class SliceMean(torch.nn.Module):  # image = mean class index of the slice's one-hot input
        def forward(self, x):
            idx = x.argmax(1, keepdim=True).float()
            return idx.mean((2, 3), keepdim=True).expand_as(idx)

    labels = torch.zeros(8, 8, 5, dtype=torch.long)
    for z in range(5):
        labels[:, :, z] = z
    out = render_volume(SliceMean(), labels, 6, 2, slice_batch=2)
    assert out.shape == (8, 8, 5)
    assert torch.allclose(out[0, 0], torch.arange(5).float())
    assert torch.equal(one_hot(labels[None], 6).argmax(1)[0], labels)


def test_gan_translator_resume_and_load(tiny_labelmap, tmp_path, monkeypatch):
    import lesionsynth.generative.gan.translator as tmod

    sampler = tiny_sampler(tiny_labelmap)
    monkeypatch.setattr(tmod, "PairSampler", lambda *a, **k: sampler)
    cpu = torch.device("cpu")
    train_translator(tiny_cfg(iterations=4), tmp_path / "a", cpu, seed=2, progress=False)
    train_translator(tiny_cfg(iterations=2), tmp_path / "b", cpu, seed=2, progress=False)
    train_translator(tiny_cfg(iterations=4), tmp_path / "b", cpu, seed=0, resume=True, progress=False)
    ga, cfg, schema, ca = load_translator(tmp_path / "a")
    gb, _, _, cb = load_translator(tmp_path / "b")
    assert ca["iteration"] == cb["iteration"] == 4 and schema.name == "tissue" and cfg.arch == "pix2pix"
    for va, vb in zip(ga.state_dict().values(), gb.state_dict().values(), strict=True):
        assert torch.equal(va, vb)
    assert (tmp_path / "a" / "samples" / "iter_0000004.png").is_file()
    with pytest.raises(InputError, match="mask-gan checkpoint"):
        from lesionsynth.generative.gan.mask_gan import load_mask_generator

        load_mask_generator(tmp_path / "a")


def test_gan_translator_config_checks():
    with pytest.raises(ValueError, match="divisible by 8"):
        TranslatorConfig(arch="spade", shape=(36, 32, 32), channels=(16, 8, 4))
    with pytest.raises(ValueError, match="arch"):
        TranslatorConfig(arch="cyclegan")
    with pytest.raises(ValueError, match="too small"):
        TranslatorConfig(arch="spade", shape=(32, 32, 32), channels=(16, 8, 4), num_d=2, disc_layers=2)


def test_gan_mni_pairs_have_t1_contrast():
    from lesionsynth.generative.gan.pairs import mni_base

    base = mni_base(6.0, TISSUE)
    assert base.image.shape == base.labels.shape
    med = {c: float(base.image[base.labels == TISSUE.index(c)].median())
           for c in ("csf", "grey_matter", "white_matter")}
    assert med["csf"] < med["grey_matter"] < med["white_matter"]
    assert float(base.image[base.labels == 0].max()) < 0.5


def test_gan_shipped_configs_load():
    from lesionsynth.config import load_config
    from lesionsynth.demo.experiment import load_experiment
    from lesionsynth.generative.gan.database import BuildConfig
    from lesionsynth.generative.gan.mask_gan import MaskGANConfig

    for name in ("gan-pix2pix", "gan-spade", "gan-pix2pix-2d-cpu"):
        assert load_config(TranslatorConfig, name).arch in ("pix2pix", "spade")
    for name in ("gan-masks", "gan-masks-cpu"):
        assert load_config(MaskGANConfig, name).objective == "wgan-gp"
    assert load_config(BuildConfig, "gan-build").labels == "default"
    exp = load_experiment("small-data")
    arms = {a.name: a for a in exp.arms}
    assert set(arms) == {f"real-{n}{x}" for n in (10, 50) for x in ("", "+gan", "+ldm", "+synth")}
    for n in (10, 50):  # the same N real cases in every arm of that N, one added source each
        srcs = [arms[f"real-{n}{x}"].overrides["sources"] for x in ("", "+gan", "+ldm", "+synth")]
        assert all(s[0] == srcs[0][0] and s[0]["max_cases"] == n for s in srcs)
        assert [len(s) for s in srcs] == [1, 2, 2, 2]
        assert [s[1]["kind"] for s in srcs[1:]] == ["gan", "ldm", "synth"]
