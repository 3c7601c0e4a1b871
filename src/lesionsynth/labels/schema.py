"""Label schemas and mapping tables are data (YAML), not code.

A :class:`LabelSchema` names the target classes a model segments. A :class:`LabelMapping` maps the
integer values of a source label map (e.g. FreeSurfer) onto a schema. Both ship as YAML files in
``lesionsynth/labels/tables``; users can pass their own files anywhere a name is accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lesionsynth.config import read_yaml
from lesionsynth.errors import ConfigError

TABLES = Path(__file__).parent / "tables"


def _read_table(name_or_path: str | Path) -> tuple[dict, str]:
    """The YAML mapping of a table file or built-in table name, and where it was read from."""
    p = Path(name_or_path)
    for cand in (p, TABLES / p, TABLES / f"{p}.yaml"):
        if cand.is_file():
            return read_yaml(cand), str(cand)
    raise ConfigError(f"{name_or_path}: no such label table (built-in: {', '.join(builtin_tables())})")


def builtin_tables() -> list[str]:
    return sorted(p.stem for p in TABLES.glob("*.yaml"))


@dataclass(frozen=True)
class LabelSchema:
    """Target classes, numbered 0..K-1.

    Attributes:
        name: schema name.
        classes: class names, index = label value.
        background: name of the background class (value 0 by convention).
        lesion: name of the lesion class, or None for a schema without lesions.
    """

    name: str
    classes: tuple[str, ...]
    background: str = "background"
    lesion: str | None = "lesion"

    def __post_init__(self) -> None:
        if len(set(self.classes)) != len(self.classes):
            raise ConfigError(f"schema {self.name}: duplicate class names")
        if self.background not in self.classes:
            raise ConfigError(f"schema {self.name}: background class '{self.background}' not in classes")
        if self.lesion is not None and self.lesion not in self.classes:
            raise ConfigError(f"schema {self.name}: lesion class '{self.lesion}' not in classes")

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def index(self, name: str) -> int:
        try:
            return self.classes.index(name)
        except ValueError:
            raise ConfigError(f"schema {self.name}: no class '{name}' (classes: {', '.join(self.classes)})") from None

    @property
    def lesion_index(self) -> int | None:
        return None if self.lesion is None else self.index(self.lesion)

    @property
    def background_index(self) -> int:
        return self.index(self.background)

    @property
    def tissue_indices(self) -> list[int]:
        """Classes other than background and lesion."""
        skip = {self.background_index, self.lesion_index}
        return [i for i in range(self.num_classes) if i not in skip]

    def to_dict(self) -> dict:
        return {"name": self.name, "classes": dict(enumerate(self.classes)),
                "background": self.background, "lesion": self.lesion}

    @classmethod
    def from_dict(cls, data: dict, where: str = "schema") -> LabelSchema:
        unknown = set(data) - {"name", "classes", "background", "lesion"}
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        classes = data.get("classes")
        if isinstance(classes, dict):
            keys = sorted(int(k) for k in classes)
            if keys != list(range(len(keys))):
                raise ConfigError(f"{where}: class values must be 0..K-1, got {keys}")
            names = tuple(str(classes[k] if k in classes else classes[str(k)]) for k in keys)
        elif isinstance(classes, list):
            names = tuple(str(c) for c in classes)
        else:
            raise ConfigError(f"{where}: 'classes' must be a mapping value -> name or a list of names")
        return cls(name=str(data.get("name", where)), classes=names,
                   background=str(data.get("background", names[0])), lesion=data.get("lesion"))


def load_schema(name_or_path: str | Path | LabelSchema = "tissue") -> LabelSchema:
    """Load a schema by built-in name (``tissue``) or YAML path."""
    if isinstance(name_or_path, LabelSchema):
        return name_or_path
    return LabelSchema.from_dict(*_read_table(name_or_path))


TISSUE = load_schema("tissue")


@dataclass(frozen=True)
class LabelMapping:
    """Source label values -> target schema classes.

    Attributes:
        schema: the target schema.
        table: source value -> target class index.
        default: class index for values not in the table, or None to make them an error.
    """

    schema: LabelSchema
    table: dict[int, int] = field(default_factory=dict)
    default: int | None = None

    @classmethod
    def from_dict(cls, data: dict, where: str = "mapping") -> LabelMapping:
        unknown = set(data) - {"schema", "map", "default"}
        if unknown:
            raise ConfigError(f"{where}: unknown key '{sorted(unknown)[0]}'")
        schema = load_schema(data.get("schema", "tissue"))
        table: dict[int, int] = {}
        for name, values in (data.get("map") or {}).items():
            idx = schema.index(str(name))
            for v in values if isinstance(values, list) else [values]:
                if int(v) in table and table[int(v)] != idx:
                    raise ConfigError(f"{where}: value {v} mapped twice")
                table[int(v)] = idx
        default = data.get("default")
        return cls(schema=schema, table=table, default=None if default is None else schema.index(default))

    @classmethod
    def identity(cls, schema: LabelSchema) -> LabelMapping:
        return cls(schema=schema, table={i: i for i in range(schema.num_classes)})

    def lut(self, values: np.ndarray, source: str = "label map") -> np.ndarray:
        """Target class of each of ``values``; unmapped values raise a one-line error."""
        out = np.empty(len(values), dtype=np.int64)
        for i, v in enumerate(values):
            t = self.table.get(int(v), self.default)
            if t is None:
                raise ConfigError(f"{source}: label value {int(v)} is not in the mapping table "
                                  "(add it to the table's 'map' or set 'default')")
            out[i] = t
        return out

    def apply(self, labels: np.ndarray, source: str = "label map") -> np.ndarray:
        """Map an integer label array onto the schema."""
        values, inverse = np.unique(np.asarray(labels).astype(np.int64), return_inverse=True)
        return self.lut(values, source)[inverse].reshape(np.shape(labels))


def load_mapping(name_or_path: str | Path | LabelMapping = "freesurfer-to-tissue") -> LabelMapping:
    """Load a mapping table by built-in name or YAML path."""
    if isinstance(name_or_path, LabelMapping):
        return name_or_path
    return LabelMapping.from_dict(*_read_table(name_or_path))
