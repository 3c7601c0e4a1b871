"""The run folder of every trainer (the segmenter, both GANs, both LDM stages).

Layout::

    RUN/config.yaml            # the resolved config (every default filled in)
    RUN/run.json               # provenance of every start: package version, git revision, libraries, ...
    RUN/metrics.csv            # one row per logged iteration (lesionsynth.runs.log)
    RUN/tensorboard/           # the segmenter's scalars for TensorBoard
    RUN/checkpoints/last.pt    # resumable state (lesionsynth.runs.checkpoint)
    RUN/checkpoints/best.pt    # the segmenter's best validation lesion Dice (inference checkpoint)
    RUN/samples/iter_NNNNNNN.png  # the generative trainers' previews

One resume rule: a folder that holds training is never overwritten without ``--resume``, and a resumed
run keeps its recorded config (a given config must not differ, except in runtime keys and the run's
length).
"""

from __future__ import annotations

import json
import platform
import socket
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from lesionsynth import __version__
from lesionsynth.errors import ConfigError, InputError
from lesionsynth.io.atomic import remove_stale_temporaries, write_text_atomic

# keys that may differ between a run and its resumption without changing what is computed
RUNTIME_KEYS = {"device", "num_workers", "threads", "log_every", "sample_every", "checkpoint_every"}
# keys a resumed run may change: the run's length (the segmenter's poly schedule is re-fitted to the new
# end from the current iteration on; run.json records each start's arguments)
RESUME_CHANGEABLE_KEYS = {"epochs", "iterations", "time_budget_min"}
LIBRARIES = ["torch", "monai", "numpy", "scipy", "nibabel", "nilearn", "pyyaml", "tqdm", "tensorboard"]


def git_revision() -> dict[str, Any] | None:
    """The source tree's git commit and whether it has uncommitted changes, if it is a git checkout."""
    here = Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if rev.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10)
        return {"commit": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return None


def library_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def environment(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Provenance of this start of the run."""
    import torch

    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "lesionsynth": __version__,
        "git": git_revision(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "argv": sys.argv,
        "libraries": library_versions(),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available() else [],
        **(extra or {}),
    }


def _first_difference(a: Any, b: Any, prefix: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if k in RUNTIME_KEYS or k in RESUME_CHANGEABLE_KEYS:  # at any depth (the LDM's train.iterations)
                continue
            d = _first_difference(a.get(k), b.get(k), f"{prefix}{k}.")
            if d is not None:
                return d
        return None
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        a, b = list(a), list(b)
    return None if a == b else prefix.rstrip(".")


def recorded_config(run_dir: Path) -> dict[str, Any] | None:
    p = Path(run_dir) / "config.yaml"
    if not p.is_file():
        return None
    try:
        return yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"{p}: not valid YAML") from None


def config_for_start(out: str | Path, resume: bool, config: str | Path | None, overrides: dict[str, Any],
                     default: str | Path | None = None) -> dict[str, Any]:
    """The config data a training verb runs with, by one rule for every trainer: with ``--resume`` and no
    ``--config``, the run's recorded ``config.yaml`` updated by the overrides (``--set``, ``--iterations``);
    otherwise the given config (file or shipped name; ``default`` when None) with them. The trainer then
    refuses a config that differs from the recorded one outside runtime and length keys
    (:func:`check_can_start`)."""
    from lesionsynth.config import deep_update, read_yaml, resolve_config_path

    if resume and config is None:
        rec = recorded_config(Path(out))
        if rec is not None:
            return deep_update(rec, overrides)
    path = config if config is not None else default
    return deep_update(read_yaml(resolve_config_path(path)) if path is not None else {}, overrides)


def has_trained(run_dir: Path) -> bool:
    """Whether a run folder holds training to protect: a checkpoint or logged iterations. A folder whose
    start failed before the first iteration (e.g. a bad file in ``real.path``) holds neither, so the
    same command can simply be run again once the input is fixed."""
    if any((run_dir / "checkpoints").glob("*.pt")):  # none when the folder does not exist
        return True
    metrics = run_dir / "metrics.csv"
    try:
        return metrics.is_file() and len(metrics.read_text().splitlines()) > 1
    except OSError:
        return True


def check_can_start(run_dir: Path, config: dict[str, Any] | None, resume: bool) -> None:
    """Refuse to overwrite a run without ``resume``, or to resume it with another config than the recorded
    one, runtime and length keys excepted (reads only; ``config`` None: the caller takes the recorded one).

    Raises:
        InputError: the folder holds training and ``resume`` is False.
        ConfigError: ``--out`` is a file, or the config differs from the recorded one.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir}: exists and is not a folder")
    if not resume and has_trained(run_dir):
        raise InputError(f"{run_dir}: already holds a run; add --resume to continue it or choose another --out")
    rec = recorded_config(run_dir) if resume and config is not None else None
    diff = _first_difference(rec, config) if rec is not None else None
    if diff is not None:
        raise ConfigError(f"{run_dir / 'config.yaml'}: the given config differs from the run's at '{diff}'; "
                          f"resume without --config, or start a new --out folder")


class RunFolder:
    """The paths of one run folder and the steps every trainer takes on it."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def last(self) -> Path:
        return self.root / "checkpoints" / "last.pt"

    @property
    def best(self) -> Path:
        return self.root / "checkpoints" / "best.pt"

    def sample_png(self, iteration: int) -> Path:
        return self.root / "samples" / f"iter_{iteration:07d}.png"

    def resumable(self, config: dict[str, Any] | None, resume: bool) -> bool:
        """Whether there is a ``last.pt`` to continue (reads only; see :func:`check_can_start`)."""
        check_can_start(self.root, config, resume)
        return resume and self.last.is_file()

    def start(self, config: dict[str, Any], resume: bool, extra: dict[str, Any] | None = None) -> None:
        """Create or re-open the folder (main rank only): record the config, append this start's provenance
        to ``run.json``, remove stale temporary files.

        Raises:
            InputError, ConfigError: see :func:`check_can_start`.
        """
        check_can_start(self.root, config, resume)
        self.root.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.root / "config.yaml", yaml.safe_dump(config, sort_keys=False))
        rj = self.root / "run.json"
        try:
            starts = list(json.loads(rj.read_text()).get("starts", [])) if rj.is_file() else []
        except (json.JSONDecodeError, AttributeError):
            starts = []
        write_text_atomic(rj, json.dumps({"starts": [*starts, environment(extra)]}, indent=1, default=str) + "\n")
        if resume:  # the temporary files of a write that was killed (checkpoints/.last.*.tmp.pt, ...)
            for folder in (self.root, self.root / "checkpoints"):
                remove_stale_temporaries(folder, recursive=False)
