"""Bundled models: the registry, `lesionsynth models`, `predict` without --model, export to fp16."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lesionsynth import pretrained
from lesionsynth.cli import main
from lesionsynth.models import export_model


def test_the_default_bundled_model_loads_and_segments_a_tiny_volume(tmp_path):
    from lesionsynth.infer import PredictConfig, load_segmenter, predict_volume

    assert pretrained.bundled_path(pretrained.DEFAULT_MODEL) is not None, "the default model must ship"
    seg = load_segmenter(pretrained.DEFAULT_MODEL, device="cpu")
    assert seg.schema.lesion_index is not None
    assert all(p.dtype == torch.float32 for p in seg.model.parameters())  # fp16 on disk, fp32 in use
    rng = np.random.default_rng(0)
    image = rng.normal(100, 10, (24, 28, 20)).astype(np.float32)
    image[8:16, 10:18, 6:14] += 80
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    pred = predict_volume(seg, image, affine, config=PredictConfig(fast=True))
    assert pred.labels.shape == image.shape and pred.lesion.shape == image.shape
    assert pred.labels.max() < seg.schema.num_classes


def test_bundled_weights_are_fp16_small_and_carded():
    models = pretrained.list_models()
    assert [m.name for m in models].count(pretrained.DEFAULT_MODEL) == 1
    for m in models:
        assert m.weights.stat().st_size <= 15 * 1024 * 1024
        assert m.card.is_file() and len(m.summary) > 40
        ck = torch.load(m.weights, map_location="cpu", weights_only=True)  # plain tensors and data only
        floats = [v for v in ck["model"].values() if torch.is_floating_point(v)]
        assert floats and all(v.dtype == torch.float16 for v in floats)


def test_models_verb_lists_bundled_models(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert pretrained.DEFAULT_MODEL in out and "(default)" in out


def test_predict_without_model_uses_the_bundled_one(tmp_path):
    import nibabel as nib

    img = np.random.default_rng(1).normal(100, 10, (20, 20, 20)).astype(np.float32)
    nib.save(nib.Nifti1Image(img, np.diag([2.0, 2.0, 2.0, 1.0])), str(tmp_path / "scan.nii.gz"))
    assert main(["predict", "-i", str(tmp_path / "scan.nii.gz"), "-o", str(tmp_path / "out"), "--fast"]) == 0
    out = nib.load(str(tmp_path / "out" / "scan_lesion.nii.gz"))
    assert out.shape == (20, 20, 20)


def test_export_writes_fp16_inference_weights_and_names_resolve(tmp_path, monkeypatch):
    from monai.networks.nets import UNet

    from lesionsynth.labels import TISSUE
    from lesionsynth.models import ModelConfig
    from lesionsynth.models.checkpoint import model_state, resolve_checkpoint, save_checkpoint

    mc = ModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, dropout=0.0)
    from lesionsynth.models import build_unet

    net = build_unet(mc)
    assert isinstance(net, UNet)
    state = model_state(net, mc, TISSUE, {"spacing": 2.0, "normalisation": "zscore"})
    state["optimizer"] = {"junk": torch.zeros(3)}
    src = save_checkpoint(tmp_path / "run.pt", state)
    monkeypatch.setattr(pretrained, "HERE", tmp_path / "bundle")
    (tmp_path / "bundle").mkdir()
    out = export_model(src, tmp_path / "bundle" / "toy.pt")
    (tmp_path / "bundle" / "toy.md").write_text("# toy\n\nA toy model for a test of the registry only.\n")
    ck = torch.load(out, weights_only=True)
    assert "optimizer" not in ck and all(v.dtype == torch.float16 for v in ck["model"].values()
                                         if torch.is_floating_point(v))
    assert pretrained.bundled_path("toy") == out and pretrained.bundled_path("../toy") is None
    assert resolve_checkpoint("toy") == out
    assert [m.summary for m in pretrained.list_models()] == ["A toy model for a test of the registry only."]
    with pytest.raises(Exception, match="bundled model name"):
        resolve_checkpoint("no-such-model")
