"""Dataset folders (nnU-Net v2 layout) shared by every generator, training and evaluation."""

from lesionsynth.data.folder import (
    Case,
    DatasetFolder,
    case_done,
    case_files,
    read_dataset,
    write_case,
    write_dataset_json,
)

__all__ = ["Case", "DatasetFolder", "case_done", "case_files", "read_dataset", "write_case",
           "write_dataset_json"]
