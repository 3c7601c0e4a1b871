"""Typed dataclass configs loadable from YAML.

Every stage's configuration is a (nested) dataclass. :func:`from_dict` builds one from plain data and
rejects unknown keys by name, so a typo in a YAML file is an error, not a silently ignored option.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from lesionsynth.errors import ConfigError

T = TypeVar("T")


# a config's scalar types: how an error names the expected value, and the Python types accepted
_SCALARS: dict[type, tuple[str, type | tuple[type, ...]]] = {
    bool: ("true/false", bool), float: ("a number", (int, float)), int: ("an integer", int), str: ("a string", str)}


def _convert(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in [a for a in args if a is not type(None)]:
            try:
                return _convert(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        out = [_convert(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_convert(kt, k, where): _convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{where}: {value!r} is not one of {list(args)}")
        return value
    if tp in _SCALARS:  # bool is an int to Python, but true/false is not a number in a config
        expected, types_ok = _SCALARS[tp]
        if not isinstance(value, types_ok) or (tp is not bool and isinstance(value, bool)):
            raise ConfigError(f"{where}: expected {expected}, got {value!r}")
        return float(value) if tp is float else value
    return value


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from ``data``; unknown keys and bad types raise :class:`ConfigError`.

    A mapping, at the top or in any section, may start from another config file: ``extends: NAME`` (a
    path or a shipped config's name) reads that file and lays the mapping's other keys over it (see
    :func:`expand_extends`), so one set of settings lives in one file.
    """
    data = expand_extends(dict(data or {}), where)
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}' (valid keys: {', '.join(sorted(fields))})")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, ConfigError) as e:
        raise ConfigError(f"{where}: {e}") from None


def expand_extends(data: dict[str, Any], where: str = "config") -> dict[str, Any]:
    """``{extends: NAME, **rest}`` -> the YAML mapping of config NAME deep-updated with ``rest``.

    NAME may itself extend another file; a cycle is an error. Mappings without the key pass unchanged.
    """
    seen: list[str] = []
    while "extends" in data:
        rest = dict(data)
        name = rest.pop("extends")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{where}.extends: expected a config name or path, got {name!r}")
        if name in seen:
            raise ConfigError(f"{where}.extends: cycle {' -> '.join([*seen, name])}")
        seen.append(name)
        data = deep_update(read_yaml(resolve_config_path(name)), rest)
    return data


def check_probability(name: str, value: float) -> None:
    """Raise :class:`ConfigError` unless ``0 <= value <= 1`` (for a config's ``__post_init__``)."""
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{name} = {value} is not a probability in [0, 1]")


def check_at_least(name: str, value: float | None, low: float, strict: bool = False) -> None:
    """Raise :class:`ConfigError` unless ``value >= low`` (``> low`` when ``strict``); None passes."""
    if value is None:
        return
    if value < low or (strict and value == low):
        raise ConfigError(f"{name} = {value} must be {'>' if strict else '>='} {low}")


def check_interval(name: str, pair: tuple[float, float] | list[float], low: float | None = None,
                   high: float | None = None) -> None:
    """Raise :class:`ConfigError` unless ``pair`` is ``(lo, hi)`` with ``lo <= hi`` inside [low, high]."""
    lo, hi = pair
    if lo > hi:
        raise ConfigError(f"{name} = ({lo}, {hi}): the lower bound exceeds the upper")
    if (low is not None and lo < low) or (high is not None and hi > high):
        bound = f"within [{low}, {high}]" if low is not None and high is not None else (
            f">= {low}" if low is not None else f"<= {high}")
        raise ConfigError(f"{name} = ({lo}, {hi}): both values must be {bound}")


def to_dict(obj: Any) -> Any:
    """Plain-data (YAML/JSON-serialisable) view of a dataclass config."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with one-line errors for missing or malformed files."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        raise ConfigError(f"{p}: not valid YAML{line}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a YAML mapping at the top level")
    return data


def load_config(cls: type[T], path: str | Path | None, overrides: dict[str, Any] | None = None) -> T:
    """Load dataclass ``cls`` from a YAML file (or defaults when ``path`` is None)."""
    data: dict[str, Any] = read_yaml(resolve_config_path(path)) if path is not None else {}
    if overrides:
        data = deep_update(data, overrides)
    return from_dict(cls, data, where=str(path) if path else "config")


def deep_update(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_update(out[k], v)
        else:
            out[k] = v
    return out


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["a.b=1", "c=[1, 2]"]`` -> ``{"a": {"b": 1}, "c": [1, 2]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item}: expected KEY=VALUE")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item}: value is not valid YAML") from None
        if isinstance(value, str):  # YAML 1.1 reads 5e-3 as a string
            try:
                value = float(value)
            except ValueError:
                pass
        node = out
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"--set {item}: bad key '{key}'")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item}: '{part}' is set both as a value and a section")
        node[parts[-1]] = value
    return out


PACKAGE_CONFIGS = Path(__file__).parent / "configs"


def resolve_config_path(path: str | Path) -> Path:
    """A path as given, or else the shipped config of that name (``tiny-cpu`` or ``tiny-cpu.yaml``)."""
    p = Path(path)
    if p.exists():
        return p
    for cand in (PACKAGE_CONFIGS / p, PACKAGE_CONFIGS / f"{p}.yaml", PACKAGE_CONFIGS / "experiments" / p,
                 PACKAGE_CONFIGS / "experiments" / f"{p}.yaml"):
        if cand.is_file():
            return cand
    return p
