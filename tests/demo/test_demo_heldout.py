from lesionsynth.config import resolve_config_path, to_dict
from lesionsynth.demo.run import _heldout_synth_config
from lesionsynth.synth.generator import load_synth_config
from lesionsynth.train.config import load_train_config
from lesionsynth.train.sources import synth_config_for_training


def test_heldout_cases_use_the_training_generator(tmp_path):
    """The demo's held-out synthetic cases come from the generator exactly as training runs it (priors,
    resolution, crop); only the seed differs."""
    path = _heldout_synth_config("tiny-cpu", tmp_path / "heldout.yaml")
    held = load_synth_config(str(path))
    train = synth_config_for_training(load_train_config(resolve_config_path("tiny-cpu")))
    assert to_dict(held) == to_dict(train)
    assert held.resolution == 2.0 and tuple(held.augment.spatial.crop_size) == (80, 80, 80)
    assert held.intensity.lesion_min_contrast == 80.0
    before = path.stat().st_mtime_ns
    _heldout_synth_config("tiny-cpu", path)  # unchanged: not rewritten
    assert path.stat().st_mtime_ns == before


def test_the_demo_trains_under_its_time_budget(tmp_path, monkeypatch):
    """``demo`` passes its training time budget (``--train-minutes``, default 14) to ``train`` as
    ``time_budget_min``; ``--no-train-budget`` trains the config's full length."""
    import pytest

    from lesionsynth.demo import run as demo_run
    from lesionsynth.demo import stages
    from lesionsynth.demo.cli import register

    class Stop(Exception):
        pass

    seen = []

    def fake_train(config, run_dir, overrides=None):
        seen.append(overrides)
        raise Stop

    monkeypatch.setattr(stages, "train_or_resume", fake_train)
    monkeypatch.setattr("lesionsynth.synth.build_dataset", lambda *a, **k: None)
    import argparse

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    cases = ((["demo"], 14.0), (["demo", "--train-minutes", "3"], 3.0), (["demo", "--no-train-budget"], None))
    for argv, budget in cases:
        args = parser.parse_args([*argv, "--out", str(tmp_path)])
        with pytest.raises(Stop):
            demo_run.run_demo(demo_run.DemoOptions(out=tmp_path, train_minutes=args.train_minutes))
        assert seen[-1].get("time_budget_min") == budget


def test_the_demo_says_when_the_budget_shortened_training(tmp_path, monkeypatch, capsys):
    import types

    import pytest

    from lesionsynth.demo import run as demo_run
    from lesionsynth.demo import stages

    class Stop(Exception):
        pass

    def after_training(*a, **k):
        raise Stop

    monkeypatch.setattr(stages, "train_or_resume",
                        lambda *a, **k: types.SimpleNamespace(planned_iterations=450, iterations=450,
                                                                config_iterations=2700))
    monkeypatch.setattr("lesionsynth.synth.build_dataset", lambda *a, **k: None)
    monkeypatch.setattr("lesionsynth.demo.testimages.make_stroke_images", after_training)
    with pytest.raises(Stop):
        demo_run.run_demo(demo_run.DemoOptions(out=tmp_path, train_minutes=3.0))
    assert "trained 450 of 2700 iterations: the 3-minute time budget" in capsys.readouterr().out
