"""Training sources as a weighted list: draw frequencies, exact resume, one-line errors, per-source loss."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from lesionsynth.errors import ConfigError
from lesionsynth.ops import case_seed
from lesionsynth.train.config import config_from_dict
from lesionsynth.train.loop import train
from lesionsynth.train.sources import TrainingSources, source_schedule, uniform_draws
from lesionsynth.train.toy import toy_config, write_blob_dataset


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    return (write_blob_dataset(root / "a", n=2, shape=(24, 24, 24), spacing=2.0),
            write_blob_dataset(root / "b", n=2, shape=(24, 24, 24), spacing=2.0, seed=7))


def _data(folders, sources, **over):
    a, b = folders
    spec = {"a": {"kind": "folder", "path": str(a), "cache": True, "augment": None},
            "b": {"kind": "gan", "path": str(b), "cache": True, "augment": None}}
    synth = {"resolution": None} if any(s == "synth" for s, _ in sources) else None
    data = toy_config(a, schema="tissue", synth=synth, real=None, preprocessing={"spacing": 2.0},
                      sources=[dict(spec[s], weight=w) if s in spec else {"kind": s, "weight": w} for s, w in sources])
    data.update(over)
    return data


def test_uniform_draws_are_case_seed():
    u = uniform_draws(11, np.arange(20))
    assert np.allclose(u, [case_seed(11, k) / 2**63 for k in range(20)], rtol=0, atol=1e-15)
    assert ((0 <= u) & (u < 1)).all()
    from lesionsynth.ops import case_seeds

    assert [int(v) for v in case_seeds(11, np.arange(20))] == [case_seed(11, k) for k in range(20)]


def test_source_weights_drive_the_draw_frequencies(folders):
    """Shares of 4000 iterations within 0.03 of the weights' shares (binomial sd <= 0.008)."""
    cfg = config_from_dict(_data(folders, [("synth", 1.0), ("a", 1.0), ("b", 2.0)], epochs=400,
                                 iterations_per_epoch=10))
    sched = source_schedule(cfg)
    shares = np.bincount(sched, minlength=3) / len(sched)
    assert np.abs(shares - [0.25, 0.25, 0.5]).max() < 0.03, shares
    # a pure function of (seed, iteration, rank): ranks differ, a longer run keeps the prefix, seeds differ
    assert not np.array_equal(sched, source_schedule(cfg, rank=1, world=2)[: len(sched)])
    longer = config_from_dict(_data(folders, [("synth", 1.0), ("a", 1.0), ("b", 2.0)], epochs=800,
                                    iterations_per_epoch=10))
    assert np.array_equal(source_schedule(longer)[: len(sched)], sched)
    other = config_from_dict(_data(folders, [("synth", 1.0), ("a", 1.0), ("b", 2.0)], epochs=400,
                                   iterations_per_epoch=10, seed=1))
    assert not np.array_equal(source_schedule(other), sched)


def test_batches_follow_the_schedule_and_name_their_source(folders, tiny_labelmap):
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.train.sources import synth_config_for_training

    cfg = config_from_dict(_data(folders, [("synth", 1.0), ("a", 1.0), ("b", 1.0)]))
    gen = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[tiny_labelmap])
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"), generator=gen)
    assert [s.name for s in src.specs] == ["synth", "folder", "gan"]
    for i in range(8):
        b = src.batch(i)
        assert b.source == src.source_of(i).name and b.synthetic == (b.source == "synth")
        assert b.image.shape == (1, 1, 16, 16, 16)
    n = int((src.schedule[:8] == 0).sum())
    assert src.synthetic_count(8) == n and src.synthetic_count(0) == 0


def _same_weights(a, b):
    ca, cb = torch.load(a, weights_only=False), torch.load(b, weights_only=False)
    assert ca["progress"] == cb["progress"]
    for k, v in ca["model"].items():
        assert torch.equal(v, cb["model"][k]), k


def test_resumed_mixed_source_run_equals_uninterrupted_and_logs_per_source_loss(tmp_path, folders, tiny_labelmap):
    from lesionsynth.synth import SynthGenerator
    from lesionsynth.train.sources import synth_config_for_training

    data = _data(folders, [("synth", 1.0), ("a", 1.0), ("b", 1.0)], epochs=2, iterations_per_epoch=6,
                 checkpoint_every=3, log_every=2, model={"channels": [4, 8, 16], "strides": [2, 2], "dropout": 0.2},
                 seed=2)
    cfg = config_from_dict(data)
    assert set(source_schedule(cfg)[7:].tolist()) == {0, 1, 2}  # seed 2: every source after the stop

    def run(path, **kw):
        gen = SynthGenerator(synth_config_for_training(cfg), "cpu", label_maps=[tiny_labelmap])
        return train(config_from_dict(data), path, progress_bar=False, generator=gen, **kw)

    run(tmp_path / "full")
    run(tmp_path / "part", stop_after=7)
    run(tmp_path / "part", resume=True)
    _same_weights(tmp_path / "full" / "checkpoints" / "last.pt", tmp_path / "part" / "checkpoints" / "last.pt")
    with open(tmp_path / "part" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r["phase"] == "train"]
    assert {"loss_synth", "loss_folder", "loss_gan"} <= set(rows[0])
    assert [int(r["iteration"]) for r in rows] == [2, 4, 6, 7, 8, 10, 12]  # 7: the row at the stop
    filled = {k for r in rows for k in ("loss_synth", "loss_folder", "loss_gan") if r[k]}
    assert filled == {"loss_synth", "loss_folder", "loss_gan"}


@pytest.mark.parametrize("sources, over, message", [
    ([{"kind": "bogus"}], {}, "sources[0]: kind 'bogus' is not one of"),
    ([{"kind": "synth", "weight": 0}], {}, "sources[0]: weight must be a positive number"),
    ([{"kind": "synth", "weight": -1}], {}, "weight must be a positive number"),
    ([{"kind": "folder"}], {}, "sources[0]: kind 'folder' needs path"),
    ([{"kind": "folder", "path": "/no/such/dir"}], {}, "path /no/such/dir: dataset folder not found"),
    ([{"kind": "physics"}], {}, "kind 'physics' needs the 'physics' section"),
    ([{"kind": "synth"}, {"kind": "synth"}], {}, "kind 'synth' is listed twice"),
    ([{"kind": "gan", "checkpoint": "runs/spade"}], {}, "checkpoint runs/spade: not found"),
    ([{"kind": "ldm", "checkpoint": "runs/dm"}], {}, "an ldm checkpoint (the mask LDM) needs build: {image: "),
    ([{"kind": "ldm", "checkpoint": "runs/dm", "build": {"image": "runs/im"}}], {},
     "checkpoint runs/dm: not found (a mask LDM run)"),
    ([{"kind": "ldm", "checkpoint": "runs/dm", "build": {"image": "x", "condition_range": [0.8, 0.2]}}], {},
     "condition_range [0.8, 0.2]: need finite A <= B"),
    ([{"kind": "ldm", "checkpoint": "runs/dm", "build": {"lesions": "procedural"}}], {}, "unknown key 'lesions'"),
    ([{"kind": "folder", "checkpoint": "runs/x"}], {}, "checkpoint is for kinds gan and ldm only"),
    ([{"kind": "gan", "path": "/tmp", "build": {"lesions": "procedural"}}], {}, "build settings need checkpoint"),
    ([{"kind": "gan", "build": {"colour": 1}}], {}, "unknown key 'colour'"),
    ([{"kind": "synth", "build": {"image": "x"}}], {}, "build settings need checkpoint"),
    ([{"kind": "synth", "name": "a b"}], {}, "name 'a b' must be unique"),
    ([{"kind": "synth", "colour": 1}], {}, "unknown key 'colour'"),
    ([], {}, "sources is empty"),
    ([{"kind": "folder", "path": "/tmp"}], {}, "the 'synth' section is set but no source uses it"),
    ([{"kind": "synth"}], {"mix": [2, 1]}, "not both; rewrite them as sources"),
])
def test_a_bad_source_entry_is_one_clear_error(folders, sources, over, message):
    data = _data(folders, [], **over)
    data["sources"] = sources
    if any(s.get("kind") == "synth" for s in sources) or "section is set" in message:
        data["synth"] = {"resolution": None}
    with pytest.raises(ConfigError) as e:
        config_from_dict(data)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_sources_and_the_older_real_key_together_say_how_to_rewrite(folders):
    data = _data(folders, [("synth", 1.0)], real={"path": str(folders[0])})
    with pytest.raises(ConfigError, match=r"rewrite them as sources: \[\{kind: synth, weight: 1\}, "
                                          r"\{kind: folder, path: .*, weight: 1\}\]"):
        config_from_dict(data)


def test_a_gan_checkpoint_source_renders_build_dataset_cases_on_the_fly(folders, translator, tmp_path):
    import nibabel as nib

    from lesionsynth.generative.gan.database import BuildConfig, build_dataset

    build = {"labels": "default", "lesions": "procedural", "p_lesion": 1.0, "previews": 0}
    data = _data(folders, [("a", 1.0)])
    data["sources"] = [{"kind": "folder", "path": str(folders[0]), "cache": True, "augment": None},
                       {"kind": "gan", "checkpoint": str(translator), "build": build, "weight": 3.0}]
    cfg = config_from_dict(data)
    src = TrainingSources(cfg, cfg.label_schema(), torch.device("cpu"))
    assert set(src.generated) == {1} and src.synth is None
    i = int(np.argmax(src.schedule == 1))
    b = src.batch(i)
    assert b.synthetic and b.source == "gan" and b.image.shape == (1, 1, 16, 16, 16)
    assert abs(float(b.image.mean())) < 0.5 and b.labelled.all()
    # the same case as `gan build-dataset` writes, brought onto the training grid
    k = src.synthetic_count(i, 1) * cfg.batch_size
    out = build_dataset(translator, tmp_path / "db", k + 1, BuildConfig(**build), seed=cfg.seed, progress=False)
    written = nib.load(str(out / "labelsTr" / f"gan_{k:05d}.nii.gz"))
    params = src.generated[1].renderer.render(k, cfg.seed)
    assert np.array_equal(np.asarray(written.dataobj), params[1])
