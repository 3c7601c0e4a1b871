"""``lesionsynth experiment run CONFIG.yaml``: the papers' experiment designs on your own data.

An experiment trains one model per *arm* (or reuses a given model), predicts every *test set* (and
every multi-modal *ensemble*) with every arm, evaluates each test set across the arms (paired
statistics included) and writes one ``report.html``. Every step resumes: finished training runs,
predictions and evaluations are reused when the experiment is run again.

Config (YAML, unknown keys are errors)::

    name: baseline-vs-synth
    arms:
      - name: baseline
        train_config: baseline          # shipped name or YAML path
        overrides: {real: {path: /data/ATLAS}}
      - name: synth
        train_config: synth
        overrides: {real: {path: /data/ATLAS}}
      - name: pretrained
        model: /runs/synth/             # skip training, use this run folder / checkpoint
    test_sets:
      - {name: T1-in-domain, images: /data/test/T1, truth: /data/test/labels}
      - {name: FLAIR-ood, images: /data/test/FLAIR, truth: /data/test/labels}
    ensembles:
      - {name: T1+FLAIR, modalities: [T1-in-domain, FLAIR-ood], truth: /data/test/labels}
    predict: {tta: true, fast: false}
    evaluate: {protocol: native}
"""

from __future__ import annotations

import html
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lesionsynth.config import deep_update, load_config, read_yaml, resolve_config_path
from lesionsynth.demo.stages import predict, train_or_resume
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io.atomic import write_text_atomic

_log = logging.getLogger(__name__)


@dataclass
class ArmConfig:
    """One model: trained from ``train_config`` (+ ``overrides``), or an existing ``model``.

    ``datasets``: several nnU-Net folders (e.g. real + synthetic) merged into one training folder (links
    to the files, case ids prefixed by the folder's position) that becomes the arm's ``real.path``;
    ``max_cases`` then limits each folder (e.g. 10 real cases + a whole synthetic database).
    """

    name: str
    train_config: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    model: str | None = None
    datasets: list[str] = field(default_factory=list)
    max_cases: list[int | None] = field(default_factory=list)


@dataclass
class TestSetConfig:
    """Images (files, folders or globs) and a folder of truth label maps (matched by case id)."""

    name: str
    images: list[str]
    truth: str
    label: int = 1


@dataclass
class EnsembleConfig:
    """Co-registered modalities (names of test sets) whose logits are averaged per case."""

    name: str
    modalities: list[str]
    truth: str
    label: int = 1


@dataclass
class PredictOptions:
    tta: bool = True
    fast: bool = False
    device: str = "auto"


@dataclass
class EvaluateOptions:
    protocol: str = "native"


@dataclass
class ExperimentConfig:
    name: str
    arms: list[ArmConfig]
    test_sets: list[TestSetConfig]
    ensembles: list[EnsembleConfig] = field(default_factory=list)
    predict: PredictOptions = field(default_factory=PredictOptions)
    evaluate: EvaluateOptions = field(default_factory=EvaluateOptions)
    description: str = ""


SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Load and check an experiment config.

    Arm, test-set and ensemble names become folder names under ``--out``: they must be plain names
    (letters, digits, ``.``, ``_``, ``+``, ``-``; no ``/``, ``..`` or absolute paths), so every write stays
    inside the output folder.
    """
    cfg = load_config(ExperimentConfig, path)
    for kind, items in (("arm", cfg.arms), ("test set", cfg.test_sets), ("ensemble", cfg.ensembles)):
        for it in items:
            if not SAFE_NAME.fullmatch(str(it.name)) or set(str(it.name)) <= {"."}:
                raise ConfigError(f"{path}: {kind} name {it.name!r} must be a plain name (letters, digits, "
                                  f"'.', '_', '+', '-'; at most 64), it names a folder under --out")
    outputs = [t.name for t in cfg.test_sets] + [e.name for e in cfg.ensembles]
    if len(set(outputs)) != len(outputs):
        raise ConfigError(f"{path}: test set and ensemble names must be unique (they share output folders)")
    names = [a.name for a in cfg.arms]
    if len(set(names)) != len(names):
        raise ConfigError(f"{path}: arm names must be unique")
    for a in cfg.arms:
        if (a.train_config is None) == (a.model is None):
            raise ConfigError(f"{path}: arm '{a.name}' needs exactly one of train_config or model")
    sets = {t.name for t in cfg.test_sets}
    for e in cfg.ensembles:
        for m in e.modalities:
            if m not in sets:
                raise ConfigError(f"{path}: ensemble '{e.name}' names unknown test set '{m}'")
    return cfg


def train_arm(arm: ArmConfig, out: Path, device: str | None = None) -> Path:
    """Train (or resume) one arm; returns its run folder (or the given model)."""
    if arm.model is not None:
        return Path(arm.model)
    run_dir = out / "arms" / arm.name
    cfg = deep_update(read_yaml(resolve_config_path(arm.train_config)), arm.overrides)  # type: ignore[arg-type]
    if arm.datasets:
        merged = merge_datasets(arm.datasets, out / "arms" / f"{arm.name}_data", arm.max_cases)
        cfg = deep_update(cfg, {"real": {"path": str(merged)}})
    cfg_path = out / "arms" / f"{arm.name}.yaml"
    write_text_atomic(cfg_path, yaml.safe_dump(cfg, sort_keys=False))
    if (run_dir / "checkpoints" / "last.pt").is_file() and (run_dir / "DONE").is_file():
        _log.info(f"[{arm.name}] already trained: {run_dir}")
        return run_dir
    _log.info(f"[{arm.name}] training -> {run_dir}")
    train_or_resume(cfg_path, run_dir, {"device": device} if device else None)
    write_text_atomic(run_dir / "DONE", "")
    return run_dir


def merge_datasets(folders: list[str], dest: Path, max_cases: list[int | None] | None = None) -> Path:
    """Merge nnU-Net folders into one (symbolic links; case ids prefixed ``d0_``, ``d1_``, ...).

    The label names must agree (same ``labels`` in every ``dataset.json``).
    """
    from lesionsynth.data import read_dataset, write_dataset_json

    labels = None
    n = 0
    channels: dict[str, str] = {}
    for k, folder in enumerate(folders):
        ds = read_dataset(folder)
        if labels is not None and ds.labels != labels:
            raise InputError(f"{folder}: labels {ds.labels} differ from {folders[0]}'s {labels}")
        labels, channels = ds.labels, ds.channel_names
        limit = max_cases[k] if max_cases and k < len(max_cases) else None
        for case in ds.cases[:limit]:
            for c, img in enumerate(case.images):
                _link(img, dest / "imagesTr" / f"d{k}_{case.id}_{c:04d}.nii.gz")
            assert case.label is not None
            _link(case.label, dest / "labelsTr" / f"d{k}_{case.id}.nii.gz")
            n += 1
    write_dataset_json(dest, channels, labels or {}, n, extra={"merged_from": [str(f) for f in folders]})
    return dest


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.is_symlink() or dst.exists():
        dst.unlink()
    dst.symlink_to(Path(src).resolve())


def lesion_view(pred_dir: Path, view_dir: Path) -> Path:
    """A folder with only the binary ``*_lesion`` predictions (the common ground of every schema)."""
    view_dir.mkdir(parents=True, exist_ok=True)
    for p in sorted(pred_dir.glob("*_lesion.nii.gz")):
        target = view_dir / p.name
        if not target.exists():
            shutil.copyfile(p, target)
    return view_dir


def run_experiment(config_path: str | Path, out: str | Path) -> dict[str, Any]:
    """Run every arm through train -> predict -> evaluate and write one report."""
    from lesionsynth.demo.report import csv_rows, table_html, write_report
    from lesionsynth.evaluate import evaluate_folders

    cfg = load_experiment(config_path)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(resolve_config_path(config_path), out / "experiment.yaml")
    dev = None if cfg.predict.device == "auto" else cfg.predict.device
    models = {arm.name: train_arm(arm, out, dev) for arm in cfg.arms}
    popts = {"tta": cfg.predict.tta, "fast": cfg.predict.fast, "device": cfg.predict.device}
    sections: list[tuple[str, str]] = []
    results: dict[str, Any] = {}
    sets = {t.name: t for t in cfg.test_sets}
    evaluations = [(t.name, t.truth, t.label) for t in [*cfg.test_sets, *cfg.ensembles]]
    for arm, model in models.items():
        for t in cfg.test_sets:
            predict(t.images, out / "predictions" / arm / t.name, model, **popts)
        for e in cfg.ensembles:
            per_mod = {m: list_cases_images(sets[m].images) for m in e.modalities}
            common = sorted(set.intersection(*(set(v) for v in per_mod.values())))
            if not common:
                raise InputError(f"ensemble '{e.name}': no case id common to {', '.join(e.modalities)}")
            for cid in common:
                files = [per_mod[m][cid] for m in e.modalities]
                predict(files, out / "predictions" / arm / e.name, model, ensemble=True, **popts)
    for name, truth, label in evaluations:
        preds = {arm: lesion_view(out / "predictions" / arm / name, out / "lesion_maps" / arm / name)
                 for arm in models}
        ev = evaluate_folders(Path(truth), preds, out / "evaluation" / name, label=label,
                              protocol=cfg.evaluate.protocol, tissue_classes=[])
        results[name] = ev
        rows = csv_rows(Path(ev["summary_csv"]))
        rel = Path(ev["report_html"]).resolve().relative_to(out.resolve())
        sections.append((name, table_html(rows) + f"<p><a href='{rel}'>full report (statistics, plots)</a></p>"))
    design = f"<p>{html.escape(cfg.description)}</p><p>arms: {html.escape(', '.join(models))}</p>"
    report = write_report(out / "report.html", f"experiment: {cfg.name}", [("Design", design), *sections])
    return {"report": report, "evaluations": results}


def list_cases_images(images: list[str]) -> dict[str, Path]:
    """Case id -> image file, with the same identifier rule as evaluation (suffixes like _0000 removed)."""
    from lesionsynth.evaluate.matching import _CHANNEL_SUFFIX, _WORD_SUFFIX
    from lesionsynth.io.nifti import find_images, strip_nifti_suffix

    out: dict[str, Path] = {}
    for f in find_images(images):
        s = strip_nifti_suffix(f)
        for pat in (_WORD_SUFFIX, _CHANNEL_SUFFIX):
            s = pat.sub("", s)
        out[s] = f
    return out
