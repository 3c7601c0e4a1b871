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
