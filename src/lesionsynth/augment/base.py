"""Conventions shared by every transform module.

Each module defines a ``Config`` dataclass (probability and ranges, YAML-loadable), a ``Params``
dataclass (one draw: plain numbers and integer sub-seeds for random fields, JSON-serialisable), a
``sample(gen, cfg, ...) -> Params`` function that consumes the per-sample ``torch.Generator``, and an
``apply(params, ...)`` function that is deterministic given the params. Recording the params of a
draw is therefore enough to replay it exactly, on the image and the labels alike.
"""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from typing import Any


def params_dict(p: Any) -> dict[str, Any]:
    """JSON-friendly view of a Params dataclass."""
    return asdict(p) if is_dataclass(p) else dict(p)
