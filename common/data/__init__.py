"""Labelled data: read, validate, split, summarise and export reference structures.

See :class:`Dataset` (the one data type) and :func:`export` (each framework's own format).
"""

from common.data.dataset import (
    CHECKS,
    LABEL_KEYS,
    REF_KEYS,
    Dataset,
    Problem,
    get_labels,
    with_labels,
)
from common.data.export import (
    FORMATS,
    SCHNETPACK_UNITS,
    export,
    export_deepmd,
    export_extxyz,
    export_schnetpack,
    read_deepmd,
    read_export,
    read_extxyz,
    read_schnetpack,
)
from common.data.io import read_structures, structure_hash

__all__ = [
    "CHECKS",
    "FORMATS",
    "LABEL_KEYS",
    "REF_KEYS",
    "SCHNETPACK_UNITS",
    "Dataset",
    "Problem",
    "export",
    "export_deepmd",
    "export_extxyz",
    "export_schnetpack",
    "get_labels",
    "read_deepmd",
    "read_export",
    "read_extxyz",
    "read_schnetpack",
    "read_structures",
    "structure_hash",
    "with_labels",
]
