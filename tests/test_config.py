"""lesionsynth.config: ``extends`` lays a mapping over another config file."""

import pytest

from lesionsynth.config import from_dict, load_config, to_dict
from lesionsynth.errors import ConfigError
from lesionsynth.synth.generator import SynthConfig
from lesionsynth.train.config import TrainConfig


def test_extends_lays_the_other_keys_over_the_named_file(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("resolution: 3.0\npaste: {grade_min: [0.2, 0.4], grade_scale_mm: [4.0, 8.0]}\n")
    cfg = from_dict(SynthConfig, {"extends": str(base), "paste": {"grade_scale_mm": [5.0, 6.0]}})
    assert cfg.resolution == 3.0 and tuple(cfg.paste.grade_min) == (0.2, 0.4)
    assert tuple(cfg.paste.grade_scale_mm) == (5.0, 6.0)
    assert "extends" not in to_dict(cfg)


def test_a_section_extends_a_shipped_generator_config():
    tiny = load_config(TrainConfig, "tiny-cpu")
    easy = load_config(SynthConfig, "generator-easy")
    assert to_dict(tiny.synth) == to_dict(easy)
    assert easy.intensity.lesion_min_contrast == 80.0
    stage2 = load_config(TrainConfig, "bundled-cpu-stage2")  # extends bundled-cpu, which extends generator-stroke
    assert stage2.optim.lr == 1e-3 and stage2.optim.weight_decay == 1e-5
    assert stage2.synth.augment.spatial.crop_jitter_mm == 30.0 and stage2.synth.lesion_procedural_prob == 0.3
    v1 = load_config(TrainConfig, "bundled-cpu-v1")  # the shipped recipe: bundled-cpu + two changes
    assert v1.synth.augment.spatial.crop_jitter_mm == 40.0 and v1.lesion_crop_prob == 0.66
    assert to_dict(v1.model) == to_dict(stage2.model) and v1.optim.lr == 2e-3
    gpu = load_config(TrainConfig, "bundled-gpu")  # v1 on a GPU: same data, generator and network
    assert to_dict(gpu.synth) == to_dict(v1.synth) and to_dict(gpu.model) == to_dict(v1.model)
    assert (gpu.device, gpu.batch_size, gpu.init_from) == ("cuda", 4, "stroke-2mm")
    mix = load_config(TrainConfig, "bundled-cpu-mix-t1w")  # v1 + physics T1w scans, one iteration in three
    assert to_dict(mix.synth) == to_dict(v1.synth) and [s.kind for s in mix.sources] == ["synth", "physics"]
    assert mix.physics.modalities == ["t1w"] and mix.physics.lesion_types == ["chronic"]
    acute = load_config(TrainConfig, "bundled-cpu-mix-t1w-t2w-acute")  # the mix, T1w + T2w, acute lesions too
    assert acute.physics.modalities == ["t1w", "t2w"] and acute.physics.lesion_types == ["chronic", "acute"]
    acute.physics.modalities, acute.physics.lesion_types = mix.physics.modalities, mix.physics.lesion_types
    assert to_dict(acute) == to_dict(mix)  # nothing else differs from the T1w mix


@pytest.mark.parametrize("value, message", [("missing-config-xyz", "config file not found"), (3, "expected a config")])
def test_bad_extends_is_one_clear_error(value, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(SynthConfig, {"extends": value})


def test_an_extends_cycle_is_an_error(tmp_path):
    (tmp_path / "a.yaml").write_text(f"extends: {tmp_path / 'b.yaml'}\n")
    (tmp_path / "b.yaml").write_text(f"extends: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(ConfigError, match="cycle"):
        from_dict(SynthConfig, {"extends": str(tmp_path / "a.yaml")})
