"""Physics-rendered scans as a training source, and the OOD scoring built on them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionsynth.errors import ConfigError
from lesionsynth.lesions import ProceduralLesionConfig
from lesionsynth.physics import PhysicsConfig
from lesionsynth.train.config import config_from_dict
from lesionsynth.train.physics_source import PhysicsTrainingSource
from lesionsynth.train.sources import TrainingSources
from lesionsynth.train.toy import toy_config

SMALL = {"procedural": {"volume_ml": [8.0, 20.0], "components": [1, 1]}, "resolutions": ["2mm"],
         "modalities": ["t1w"]}


def test_physics_source_feeds_training_batches_reproducibly(tiny_labelmap):
    data = toy_config(None, real=None, schema="tissue", physics=SMALL, preprocessing={"spacing": 2.0})
    cfg = config_from_dict(data)
    src_gen = PhysicsTrainingSource(cfg.physics, (16, 16, 16), 2.0, label_maps=[tiny_labelmap])
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=src_gen)
    b = src.batch(0)
    assert b.synthetic and b.image.shape == (1, 1, 16, 16, 16) and b.target.shape == (1, 1, 16, 16, 16)
    assert abs(float(b.image.mean())) < 1e-3 and abs(float(b.image.std()) - 1) < 0.05  # z-scored
    assert set(b.target.unique().tolist()) <= set(range(6))
    again = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=src_gen).batch(0)
    assert torch.equal(again.image, b.image) and torch.equal(again.target, b.target)
    assert src_gen.generator.draw(0, cfg.seed)["scan"]["modality"] == "t1w"


def test_synth_and_physics_together_need_sources():
    with pytest.raises(ConfigError, match="not both"):
        config_from_dict(toy_config(None, real=None, schema="tissue", synth={}, physics={}))
    with pytest.raises(ConfigError, match="modalities"):
        config_from_dict(toy_config(None, real=None, schema="tissue", physics={"modalities": ["xray"]}))


def test_a_mixed_recipe_draws_from_synth_and_physics(tiny_labelmap, monkeypatch):
    from lesionsynth.physics import PhysicsGenerator
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.train import physics_source
    from lesionsynth.train.sources import synth_config_for_training

    data = toy_config(None, real=None, schema="tissue", physics=SMALL, synth={}, preprocessing={"spacing": 2.0},
                      sources=[{"kind": "synth", "weight": 1}, {"kind": "physics", "weight": 1}])
    cfg = config_from_dict(data)
    monkeypatch.setattr(physics_source, "PhysicsGenerator",  # the tiny anatomy instead of the MNI default
                        lambda c, label_maps=None: PhysicsGenerator(c, label_maps=[tiny_labelmap]))
    synth = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[tiny_labelmap])
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=synth)
    kinds = [src.source_of(i).kind for i in range(cfg.total_iterations)]
    assert set(kinds) == {"synth", "physics"}
    assert src.synth is synth  # validation draws from the synth source; the pre-built generator stands for it
    for i in range(cfg.total_iterations):
        b = src.batch(i)
        assert b.synthetic and b.source == kinds[i] and b.image.shape[2:] == tuple(cfg.crop_size)
        assert set(b.target.unique().tolist()) <= set(range(6))
    j = kinds.index("physics")  # each source counts its own cases: the first physics iteration is case 0
    assert src.synthetic_count(j, src.specs.index(src.source_of(j))) == 0


def test_ood_scores_a_segmenter_per_protocol_and_resolution(tiny_labelmap):
    from monai.networks.nets import UNet

    from lesionsynth.evaluate.ood import PROTOCOLS, run_ood, score_scan
    from lesionsynth.infer import PredictConfig, Preprocessing
    from lesionsynth.infer.predict import as_segmenter
    from lesionsynth.labels import TISSUE
    from lesionsynth.physics import PhysicsGenerator

    gen = PhysicsGenerator(PhysicsConfig(procedural=ProceduralLesionConfig(volume_ml=(8.0, 20.0))),
                           label_maps=[tiny_labelmap])
    torch.manual_seed(0)
    net = UNet(3, 1, 6, channels=(4, 8), strides=(2,), num_res_units=0)
    seg = as_segmenter(net, TISSUE, Preprocessing(spacing=4.0, patch_size=(16, 16, 16)))
    res = run_ood(gen, seg, [0], ["2mm"], config=PredictConfig(fast=True))
    names = [r.protocol for r in res.rows]
    assert names == [p[0] for p in PROTOCOLS] + ["ensemble chronic", "ensemble acute"]
    assert all(0 <= r.lesion_dice <= 1 and 0 <= r.lesion_f1 <= 1 and r.truth_ml > 0 for r in res.rows)
    md = res.markdown()
    assert "| T1w |" in md and "Dice 2mm" in md
    # the scoring itself: a perfect prediction scores 1, PV counts as grey matter on both sides
    t = np.zeros((6, 6, 6), np.uint8)
    t[1:3], t[3:5], t[5] = 1, 2, 5
    p = t.copy()
    p[1] = 3
    s = score_scan(t, t == 5, p, p == 5, 0.001)
    assert s["lesion_dice"] == 1.0 and s["lesion_f1"] == 1.0 and s["gm_dice"] == 1.0 and s["wm_dice"] == 1.0
    # predicted lesion where the truth is background (outside the brain) is counted apart
    q = p.copy()
    q[0, :2] = 5  # 12 voxels of background called lesion
    s = score_scan(t, t == 5, q, q == 5, 0.001)
    assert s["outside_ml"] == 12 * 0.001 and s["pred_ml"] == (36 + 12) * 0.001 and s["lesion_dice"] < 1
