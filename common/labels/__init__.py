"""Reference labelling: presets (emt, xtb, pyscf, module:attr), cached by structure hash.

>>> from common.labels import LabellerSpec, label_structures, LabelDB
>>> report = label_structures(frames, LabellerSpec("xtb", {"method": "GFN2-xTB"}), "labels.db")
>>> labelled = LabelDB("labels.db").to_frames()

Frameworks (tblite, pyscf, dask) are imported only when a calculation or a sweep runs.
"""

from common.labels.calculators import (
    EMT_ELEMENTS,
    PRESETS,
    LabellerSpec,
    check_supported,
    configure_for_frame,
    frame_charge_multiplicity,
    make_calculator,
    make_spec,
)
from common.labels.direct import label_now
from common.labels.runner import LabelReport, label_structures, labelled_frames
from common.labels.store import LabelDB

__all__ = [
    "EMT_ELEMENTS",
    "PRESETS",
    "LabelDB",
    "LabelReport",
    "LabellerSpec",
    "check_supported",
    "configure_for_frame",
    "frame_charge_multiplicity",
    "label_now",
    "label_structures",
    "labelled_frames",
    "make_calculator",
    "make_spec",
]
