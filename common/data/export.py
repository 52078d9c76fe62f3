"""Writing a :class:`~common.data.dataset.Dataset` in each framework's own training format.

Each writer uses the framework's own converter or writer, and each format has a reader that
goes back through the framework's own reader, so a round trip tests what the trainer will see:

* ``extxyz`` (MACE, NequIP): extended XYZ written by ASE with the labels under ``REF_energy``
  (info, eV), ``REF_forces`` (arrays, eV/Å) and ``REF_stress`` (info, 9 components, eV/Å^3),
  so they never clash with the results of a calculator attached later.
* ``deepmd``: deepmd/npy system folders, one per composition, written by ``dpdata``.
* ``schnetpack``: an ``ASEAtomsData`` database made with ``ASEAtomsData.create`` +
  ``add_systems`` (positions in Å, energy in eV, forces in eV/Ang, per-element reference
  energies stored as ``atomrefs``).
* ``db``: a plain ASE database (labels as calculator results).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers, chemical_symbols

from common.data.dataset import REF_KEYS, Dataset, check_overwrite, get_labels, with_labels
from common.errors import ConfigError, DataError
from common.fileio import atomic_dir, atomic_path

#: export formats and what reads them
FORMATS = {
    "extxyz": "MACE / NequIP extended XYZ with REF_* keys",
    "deepmd": "DeePMD-kit deepmd/npy system folders (via dpdata)",
    "schnetpack": "SchNetPack ASEAtomsData database (.db)",
    "db": "ASE database (.db, labels as calculator results)",
}

#: SchNetPack property names and units used in the exported database
SCHNETPACK_UNITS = {"energy": "eV", "forces": "eV/Ang", "stress": "eV/Ang/Ang/Ang"}


def export(dataset: Dataset, fmt: str, path: str | os.PathLike, **opts: Any) -> Path:
    """Write ``dataset`` to ``path`` in format ``fmt`` (see :data:`FORMATS`); returns ``path``.

    ``opts`` go to the format's writer (``overwrite=True`` for all; ``type_map`` and
    ``set_size`` for deepmd; ``atomrefs`` for schnetpack; ``keys`` for extxyz).
    """
    writers: dict[str, Callable[..., Path]] = {
        "extxyz": export_extxyz,
        "deepmd": export_deepmd,
        "schnetpack": export_schnetpack,
        "db": _export_db,
    }
    if fmt not in writers:
        raise ConfigError(f"unknown export format {fmt!r}", where="fmt",
                          fix=f"choose one of {', '.join(FORMATS)}")
    try:
        return writers[fmt](dataset, path, **opts)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise ConfigError(f"option not understood by the {fmt} writer ({exc})",
                              where="export options",
                              fix=f"see common.data.export.export_{fmt} for its options") from exc
        raise


def read_export(fmt: str, path: str | os.PathLike) -> Dataset:
    """Read what :func:`export` wrote, through the framework's own reader."""
    readers: dict[str, Callable[[str | os.PathLike], Dataset]] = {
        "extxyz": read_extxyz,
        "deepmd": read_deepmd,
        "schnetpack": read_schnetpack,
        "db": Dataset.read,
    }
    if fmt not in readers:
        raise ConfigError(f"unknown export format {fmt!r}", where="fmt",
                          fix=f"choose one of {', '.join(FORMATS)}")
    return readers[fmt](path)


def _require(dataset: Dataset, what: str, require: Sequence[str] = ("energy", "forces")) -> None:
    """Raise DataError for missing/non-finite labels (the exporters cannot write those)."""
    if not len(dataset):
        raise DataError("the dataset is empty", where=dataset.source or "dataset",
                        fix="check the input file")
    found = dataset.problems(require=require, checks=("labels", "finite"))
    if found:
        p = found[0]
        n_bad = len({q.frame for q in found})
        raise DataError(f"cannot export to {what}: {p.kind}: {p.detail}; {n_bad} of "
                        f"{len(dataset)} frames affected", where=p.where,
                        fix="run `mlp-cases dataset validate` and drop or relabel those frames")


def _prepare(path: str | os.PathLike, overwrite: bool, folder: bool = False) -> Path:
    """Check ``path`` may be written.

    The old output (with ``overwrite``) is replaced only when the new one is complete (the writers
    go through :mod:`common.fileio`).

    Only a file, or a folder of deepmd systems (``folder=True``), is ever replaced: anything else
    in the way is an error, so ``--overwrite`` cannot delete an unrelated folder.
    """
    p = Path(path)
    check_overwrite(p, overwrite)
    if p.is_dir():
        children = list(p.iterdir())
        if not folder or not all((c / "type.raw").exists() for c in children):
            raise DataError("a folder that is not an earlier export is in the way", where=str(p),
                            fix="choose another output path")
    elif p.exists() and folder:
        raise DataError("a file is in the way of the output folder", where=str(p),
                        fix="choose another output path")
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


def _all_have_stress(dataset: Dataset) -> bool:
    return all("stress" in get_labels(a) for a in dataset)


# -- extxyz (MACE, NequIP) ---------------------------------------------------------------------


def export_extxyz(dataset: Dataset, path: str | os.PathLike, overwrite: bool = False,
                  keys: dict[str, str] | None = None) -> Path:
    """Write extended XYZ for MACE/NequIP: labels as ``REF_energy``/``REF_forces``/``REF_stress``.

    ``keys`` renames them (``{"energy": ..., "forces": ..., "stress": ...}``). Stress is written
    as 9 components (row-major 3x3, eV/Å^3, ASE sign). Frames carry no calculator, so ASE
    writes no ``energy=``/``forces`` of its own. ``charge``/``multiplicity`` stay in info.
    """
    import ase.io

    k = {**REF_KEYS, **(keys or {})}
    _require(dataset, "extxyz")
    frames = []
    for a in dataset:
        lab = get_labels(a)
        b = a.copy()
        b.calc = None
        b.info[k["energy"]] = float(lab["energy"])
        b.arrays[k["forces"]] = np.array(lab["forces"], dtype=float)
        if "stress" in lab:
            b.info[k["stress"]] = _stress_3x3(lab["stress"]).reshape(9)
        frames.append(b)
    p = _prepare(path, overwrite)
    with atomic_path(p) as tmp:
        ase.io.write(tmp, frames, format="extxyz")
    return p


def read_extxyz(path: str | os.PathLike, keys: dict[str, str] | None = None) -> Dataset:
    """Read an extxyz written by :func:`export_extxyz` (or any MACE/NequIP ``REF_*`` file)."""
    from common.data.io import read_structures

    k = {**REF_KEYS, **(keys or {})}
    frames = []
    for a in read_structures(path, format="extxyz"):
        b = with_labels(a, a.info.pop(k["energy"], None), a.arrays.get(k["forces"]),
                        a.info.pop(k["stress"], None))
        b.info.pop(k["energy"], None)
        b.info.pop(k["stress"], None)
        if k["forces"] in b.arrays:
            del b.arrays[k["forces"]]
        frames.append(b)
    return Dataset(frames, source=str(path))


def _stress_3x3(s: Any) -> np.ndarray:
    s = np.asarray(s, dtype=float)
    if s.shape == (6,):
        xx, yy, zz, yz, xz, xy = s
        return np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
    return s.reshape(3, 3)


# -- deepmd/npy (DeePMD-kit) -------------------------------------------------------------------


def export_deepmd(dataset: Dataset, path: str | os.PathLike, overwrite: bool = False,
                  type_map: Sequence[str] | None = None, set_size: int = 5000) -> Path:
    """Write deepmd/npy system folders under ``path``, one per composition, with dpdata.

    Each frame goes through ``dpdata.LabeledSystem(atoms, fmt="ase/structure")``; frames with
    the same atom order are stacked into one system, and ``dpdata.MultiSystems`` (with
    ``type_map``, default: the dataset's elements sorted by atomic number) writes them with
    ``to_deepmd_npy``. Stress becomes deepmd's virial (−stress × volume, eV) only when every
    frame has stress. Frames without pbc get deepmd's ``nopbc`` marker; partially periodic
    frames are written as fully periodic (deepmd has nothing in between).
    """
    import dpdata

    _require(dataset, "deepmd")
    elements = dataset.elements
    if type_map is None:
        type_map = elements
    type_map = [str(t) for t in type_map]
    missing = [e for e in elements if e not in type_map]
    if missing:
        raise ConfigError(f"type_map {type_map} lacks elements {missing} present in the data",
                          where="type_map", fix=f"add {', '.join(missing)} to the type_map")
    bad = [t for t in type_map if t not in atomic_numbers]
    if bad or len(set(type_map)) != len(type_map):
        raise ConfigError(f"type_map {type_map} has unknown or repeated symbols",
                          where="type_map", fix="give each element symbol once, e.g. Cu,Pt")
    if set_size < 1:
        raise ConfigError(f"set_size must be >= 1, got {set_size}", where="set_size",
                          fix="use the default 5000")
    with_stress = _all_have_stress(dataset)

    groups: dict[tuple, list[dict]] = {}
    for a in dataset:
        lab = get_labels(a)
        b = with_labels(a, lab["energy"], lab["forces"],
                        lab.get("stress") if with_stress else None)
        b.info.clear()  # dpdata would take info["virial"] over the stress
        data = dpdata.LabeledSystem(b, fmt="ase/structure").data
        key = (tuple(b.get_chemical_symbols()), bool(data["nopbc"]))
        groups.setdefault(key, []).append(data)
    systems = []
    for datas in groups.values():
        merged = dict(datas[0])
        for name in ("cells", "coords", "energies", "forces", "virials"):
            if name in merged:
                merged[name] = np.concatenate([d[name] for d in datas])
        systems.append(dpdata.LabeledSystem(data=merged))
    ms = dpdata.MultiSystems(*systems, type_map=list(type_map))
    p = _prepare(path, overwrite, folder=True)
    with atomic_dir(p, overwrite=overwrite) as tmp:
        ms.to_deepmd_npy(str(tmp), set_size=set_size)
    return p


def read_deepmd(path: str | os.PathLike) -> Dataset:
    """Read deepmd/npy data with dpdata: one system folder, or a folder of system folders.

    Frames come back grouped by system folder (sorted by name), not in the exported order.
    """
    import dpdata

    p = Path(path)
    if not p.is_dir():
        raise DataError("not a folder", where=str(p),
                        fix="give a deepmd/npy system folder or a folder of them")
    folders = [p] if (p / "type.raw").exists() else sorted(q.parent for q in p.glob("*/type.raw"))
    if not folders:
        raise DataError("no deepmd/npy system (type.raw) under this folder", where=str(p),
                        fix="give the folder written by export(..., 'deepmd', ...)")
    frames: list[Atoms] = []
    for f in folders:
        try:
            system = dpdata.LabeledSystem(str(f), fmt="deepmd/npy")
        except Exception as exc:
            raise DataError(f"cannot read deepmd/npy system ({type(exc).__name__}: {exc})",
                            where=str(f), fix="check type.raw, type_map.raw and set.*/") from exc
        frames.extend(system.to("ase/structure"))
    return Dataset(frames, source=str(p))


# -- SchNetPack --------------------------------------------------------------------------------


def export_schnetpack(dataset: Dataset, path: str | os.PathLike, overwrite: bool = False,
                      atomrefs: bool = True) -> Path:
    """Write a SchNetPack ``ASEAtomsData`` database (``.db``) with energy, forces (and stress).

    Properties: ``energy`` (shape (1,), eV), ``forces`` ((n, 3), eV/Ang), ``stress``
    ((1, 3, 3), eV/Ang/Ang/Ang) when every frame has it; distance unit ``Ang``. With
    ``atomrefs`` the least-squares per-element energies (:meth:`Dataset.reference_energies`)
    are stored as ``atomrefs["energy"]`` (a list indexed by Z), for SchNetPack's
    ``RemoveOffsets(remove_atomrefs=True)``.
    """
    from common.frameworks import import_schnetpack

    spk = import_schnetpack()
    p = Path(path)
    if p.suffix != ".db":
        raise ConfigError("a SchNetPack database needs the suffix .db", where=str(p),
                          fix=f"use {p.with_suffix('.db')}")
    _require(dataset, "schnetpack")
    with_stress = _all_have_stress(dataset)
    units = {k: v for k, v in SCHNETPACK_UNITS.items() if k != "stress" or with_stress}
    refs = None
    if atomrefs:
        table = [0.0] * len(chemical_symbols)
        for sym, e in dataset.reference_energies().items():
            table[atomic_numbers[sym]] = e
        refs = {"energy": table}
    atoms_list, props = [], []
    for a in dataset:
        lab = get_labels(a)
        b = a.copy()
        b.calc = None
        atoms_list.append(b)
        prop = {"energy": np.array([lab["energy"]], dtype=np.float64),
                "forces": np.array(lab["forces"], dtype=np.float64)}
        if with_stress:
            prop["stress"] = _stress_3x3(lab["stress"])[None]
        props.append(prop)
    p = _prepare(p, overwrite)
    with atomic_path(p, keep_suffix=True) as tmp:
        os.remove(tmp)  # ASEAtomsData.create refuses an existing file
        db = spk.data.ASEAtomsData.create(str(tmp), distance_unit="Ang",
                                          property_unit_dict=units, atomrefs=refs)
        db.add_systems(props, atoms_list)
        del db
    return p


def read_schnetpack(path: str | os.PathLike) -> Dataset:
    """Read a SchNetPack ``ASEAtomsData`` database with SchNetPack's own reader.

    Values are converted to Å, eV and eV/Å (SchNetPack converts from the stored units).
    """
    from common.frameworks import import_schnetpack

    spk = import_schnetpack()
    p = Path(path)
    if not p.exists():
        raise DataError("file not found", where=str(p), fix="give the path of an existing file")
    try:
        meta_units = spk.data.ASEAtomsData(str(p)).units
        want = {k: SCHNETPACK_UNITS[k] for k in meta_units if k in SCHNETPACK_UNITS}
        data = spk.data.ASEAtomsData(str(p), distance_unit="Ang", property_units=want)
    except Exception as exc:
        raise DataError(f"cannot read SchNetPack database ({type(exc).__name__}: {exc})",
                        where=str(p), fix="give a database written by ASEAtomsData.create") from exc
    s = spk.properties
    frames = []
    for i in range(len(data)):
        d = data[i]
        a = Atoms(numbers=d[s.Z].numpy(), positions=d[s.R].numpy(),
                  cell=d[s.cell].numpy()[0], pbc=d[s.pbc].numpy())
        stress = d["stress"].numpy().reshape(3, 3) if "stress" in d else None
        frames.append(with_labels(a, float(d["energy"].numpy().reshape(-1)[0]),
                                  d["forces"].numpy(), stress))
    return Dataset(frames, source=str(p))


def _export_db(dataset: Dataset, path: str | os.PathLike, overwrite: bool = False) -> Path:
    return dataset.write(Path(path), overwrite=overwrite, format="db")
