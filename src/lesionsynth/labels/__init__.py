"""Label schemas (YAML data) and sources of healthy anatomy."""

from lesionsynth.labels.schema import (
    TISSUE,
    LabelMapping,
    LabelSchema,
    builtin_tables,
    load_mapping,
    load_schema,
)
from lesionsynth.labels.sources import (
    LabelMap,
    hard_labelmap,
    load_label_source,
    mni_default,
    mni_t1_template,
    mni_tissue_probs,
    soft_maps,
)

__all__ = [
    "TISSUE", "LabelMap", "LabelMapping", "LabelSchema", "builtin_tables", "hard_labelmap",
    "load_label_source", "load_mapping", "load_schema", "mni_default", "mni_t1_template",
    "mni_tissue_probs", "soft_maps",
]
