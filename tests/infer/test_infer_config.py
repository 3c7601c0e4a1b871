"""Inference settings: the checkpoint's preprocessing record, fast mode, window defaults."""

from __future__ import annotations

import pytest
import torch
from test_infer_toys import make_affine, tiny_unet, toy_scan

from lesionsynth.errors import ConfigError
from lesionsynth.infer import PredictConfig, Preprocessing, load_segmenter, predict_volume
from lesionsynth.labels import TISSUE
from lesionsynth.models import model_state, save_checkpoint


def test_reads_the_record_training_writes(tmp_path, capsys):
    record = {"spacing": 2.0, "normalisation": "zscore", "orientation": "RAS", "patch_size": [24, 24, 32]}
    model, cfg = tiny_unet()
    save_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", model_state(model, cfg, TISSUE, record))
    seg = load_segmenter(tmp_path / "run", "cpu")
    assert seg.preprocessing == Preprocessing(spacing=2.0, patch_size=(24, 24, 32))
    assert seg.divisor == 4 and seg.schema == TISSUE
    assert capsys.readouterr().err == ""
    # windows default to the training patch size (here smaller than the 2 mm volume)
    shapes = []
    seg.model.register_forward_hook(lambda m, i, o: shapes.append(tuple(i[0].shape[2:])))
    A = make_affine((40, 44, 36), 2.0)
    img, _ = toy_scan(A, (40, 44, 36))
    predict_volume(seg, img, A, config=PredictConfig(fast=True, crop_foreground=False))
    assert set(shapes) == {(24, 24, 32)} and len(shapes) > 1


def test_unknown_or_bad_preprocessing_is_reported():
    p = Preprocessing.from_checkpoint({"spacing": [1.0, 1.0, 2.0], "future_key": 1})
    assert p.spacing == (1.0, 1.0, 2.0)
    with pytest.raises(ConfigError, match="orientation"):
        Preprocessing.from_checkpoint({"orientation": "LPS"})
    with pytest.raises(ConfigError, match="normalisation"):
        Preprocessing.from_checkpoint({"normalisation": "minmax"})


def test_fast_mode_settings_and_validation():
    eff = PredictConfig(fast=True).effective()
    assert eff.tta is False and eff.overlap == 0.25
    assert PredictConfig().effective().tta is True
    for bad in (dict(overlap=1.0), dict(window=0), dict(precision="int8"), dict(batch_size=0)):
        with pytest.raises(ConfigError):
            PredictConfig(**bad)
    assert PredictConfig.from_dict({"fast": True}).fast
    with pytest.raises(ConfigError, match="unknown key 'flips'"):
        PredictConfig.from_dict({"flips": 8})


def test_bare_network_divisor_from_monai_strides():
    from lesionsynth.infer.predict import as_segmenter

    model, _ = tiny_unet()
    assert as_segmenter(model).divisor == 4
    assert as_segmenter(torch.nn.Conv3d(1, 6, 1)).divisor == 1
