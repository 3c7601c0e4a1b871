"""Checkpoints are loaded weights-only: a crafted pickle is refused with one line and never runs code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from lesionsynth.cli import main
from lesionsynth.errors import InputError
from lesionsynth.labels import TISSUE
from lesionsynth.models import ModelConfig, build_unet, init_weights, load_checkpoint, model_state, save_checkpoint
from lesionsynth.models.checkpoint import torch_load


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: stands in for any shell command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _crafted(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "pwned"
    cfg = ModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)
    state = model_state(build_unet(cfg), cfg, TISSUE)
    state["evil"] = _Payload(marker)
    path = tmp_path / "crafted.pt"
    torch.save(state, path)
    return path, marker


def test_crafted_checkpoint_is_refused_by_every_loader(tmp_path):
    from lesionsynth.generative.ldm.models import read_ldm_checkpoint
    from lesionsynth.runs import read_run_checkpoint

    path, marker = _crafted(tmp_path)
    loaders = [lambda: torch_load(path), lambda: load_checkpoint(path),
               lambda: read_run_checkpoint(path, "mask-gan"), lambda: read_run_checkpoint(path, "segmenter"),
               lambda: read_ldm_checkpoint(path, "autoencoder")]
    for load in loaders:
        with pytest.raises(InputError, match="refused to load"):
            load()
    assert not marker.exists()


def test_crafted_checkpoint_through_the_cli(tmp_path, tiny_affine, capsys):
    from conftest import save_nifti

    path, marker = _crafted(tmp_path)
    img = save_nifti(tmp_path / "img.nii.gz", np.random.default_rng(0).random((32, 32, 32)).astype(np.float32),
                     tiny_affine)
    rc = main(["predict", "-i", str(img), "-o", str(tmp_path / "out"), "--model", str(path), "--device", "cpu"])
    err = capsys.readouterr().err
    assert rc == 2 and "refused to load" in err and "Traceback" not in err
    assert not marker.exists()


def test_checkpoints_with_numpy_rng_state_still_load(tmp_path):
    """Training checkpoints hold numpy's RNG state (arrays): data, allowed by the weights-only loader."""
    p = save_checkpoint(tmp_path / "state.pt", {"rng": {"numpy": np.random.get_state()},  # noqa: NPY002
                                                "x": torch.arange(3), "names": ["a"], "ok": True})
    blob = torch_load(p)
    assert blob["rng"]["numpy"][0] == "MT19937" and blob["names"] == ["a"]


def test_init_weights_copies_and_checks_architecture(tmp_path):
    cfg = ModelConfig(channels=(4, 8), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)
    src = build_unet(cfg)
    p = save_checkpoint(tmp_path / "src.pt", model_state(src, cfg, TISSUE))
    dst = build_unet(cfg)
    assert init_weights(dst, cfg, TISSUE, p) == p
    for a, b in zip(src.state_dict().values(), dst.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    wider = ModelConfig(channels=(8, 8), strides=(2,), num_res_units=0, out_channels=TISSUE.num_classes)
    with pytest.raises(InputError, match="differs in channels"):
        init_weights(build_unet(wider), wider, TISSUE, p)


def test_a_failed_checkpoint_write_is_an_oserror_and_leaves_no_temporary(tmp_path, monkeypatch):
    """Full disk: torch.save raises RuntimeError deep inside; the user sees one OSError line (exit 1)."""

    def full_disk(*args, **kwargs):
        raise RuntimeError("[enforce fail at inline_container.cc:858] . PytorchStreamWriter failed writing file")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(tmp_path / "last.pt", {"x": torch.zeros(2)})
    assert list(tmp_path.iterdir()) == []
