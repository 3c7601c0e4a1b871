"""Exporting checkpoints: fp16 inference file, and uniform weight averaging of several checkpoints."""

from __future__ import annotations

import pytest
import torch

from lesionsynth.errors import InputError
from lesionsynth.labels import TISSUE
from lesionsynth.models import (
    ModelConfig,
    build_unet,
    export_model,
    load_checkpoint,
    load_model,
    model_state,
    save_checkpoint,
)

CFG = ModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)


def _checkpoint(path, seed: int, cfg: ModelConfig = CFG):
    torch.manual_seed(seed)
    net = build_unet(cfg)
    return save_checkpoint(path, {**model_state(net, cfg, TISSUE), "iteration": 10 * seed}), net


def test_export_one_checkpoint_is_fp16_and_loads(tmp_path):
    src, net = _checkpoint(tmp_path / "a.pt", 1)
    out = export_model(src, tmp_path / "out.pt")
    ck = load_checkpoint(out)
    floats = [v for v in ck["model"].values() if torch.is_floating_point(v)]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert ck["meta"] == {"iteration": 10, "source": "a.pt"}
    model, _, schema, _ = load_model(out)
    assert schema.classes == TISSUE.classes
    for k, v in net.state_dict().items():
        assert torch.allclose(model.state_dict()[k].float(), v.float(), atol=1e-2, rtol=1e-2)


def test_export_averages_several_checkpoints(tmp_path):
    a, net_a = _checkpoint(tmp_path / "a.pt", 1)
    b, net_b = _checkpoint(tmp_path / "b.pt", 2)
    out = export_model([a, b], tmp_path / "avg.pt", half=False)
    ck = load_checkpoint(out)
    sa, sb = net_a.state_dict(), net_b.state_dict()
    changed = 0
    for k, v in ck["model"].items():
        if torch.is_floating_point(v):
            assert v.dtype == torch.float32
            assert torch.allclose(v, (sa[k] + sb[k]) / 2, atol=1e-6)
            changed += int(not torch.equal(sa[k], sb[k]))
    assert changed > 0  # the two seeds differ, so the average is not either one
    assert ck["meta"]["averaged"] == [str(a), str(b)]


def test_export_refuses_checkpoints_of_different_networks(tmp_path):
    a, _ = _checkpoint(tmp_path / "a.pt", 1)
    wide = ModelConfig(channels=(8, 16), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)
    b, _ = _checkpoint(tmp_path / "b.pt", 2, wide)
    with pytest.raises(InputError, match="model_config"):
        export_model([a, b], tmp_path / "avg.pt")
    assert not (tmp_path / "avg.pt").exists()
