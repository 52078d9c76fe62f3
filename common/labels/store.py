"""The labelling cache: an ASE database of labelled structures keyed by structure hash.

Each row is one labelled structure (energy eV, forces eV/Å, stress eV/Å^3 when computed) with
the key-value pairs ``structure_hash`` (the cache key: the structure and the labeller),
``labeller`` (the labeller's canonical spec), ``frame`` (index in the input it came from) and
``total_charge`` / ``multiplicity`` when the frame carried ``info["charge"]`` /
``info["multiplicity"]`` (the whole ``atoms.info`` is kept in the row's data). SQLite file by
default; a ``postgresql://`` URL is passed to :func:`ase.db.connect` as is.

:class:`LabelDB` is a :class:`common.sweep.Store`: the labelling sweep writes each result the
moment it arrives, from one process, so a killed run loses nothing that had finished.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from common.errors import ConfigError

__all__ = ["LabelDB"]

# atoms.info key -> key-value-pair column. Not "charge": ASE's AtomsRow.charge (the sum of the
# initial charges) shadows a key-value pair of that name when a row is read back.
_INFO_KVP = {"charge": "total_charge", "multiplicity": "multiplicity"}
_URL_SCHEMES = ("postgresql://", "postgres://", "mysql://", "mariadb://")
#: the driver ase.db needs for each kind of URL: (module, pip package)
_URL_DRIVERS = {"postgres": ("psycopg2", "psycopg2-binary"), "mysql": ("pymysql", "pymysql"),
                "mariadb": ("pymysql", "pymysql")}


def _check_url_driver(url: str) -> None:
    """Check that a database URL's driver is installed; say which, before anything is computed."""
    import importlib.util

    scheme = url.split("://", 1)[0]
    for prefix, (module, package) in _URL_DRIVERS.items():
        if scheme.startswith(prefix) and importlib.util.find_spec(module) is None:
            raise ConfigError(
                f"a {scheme}:// database needs the {module} driver, which is not installed",
                where=url,
                fix=f"pip install {package} into this environment, or give a SQLite file "
                "such as labels.db",
            )


def check_writable(path: Path) -> None:
    """Raise ConfigError now if the SQLite file ``path`` could not be written.

    Its folder must take the journal files too. Checking first means nothing is computed for a
    database that cannot store it.
    """
    import tempfile

    folder = path.parent
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=folder)
        os.close(fd)
        os.remove(probe)
        if path.exists():
            with open(path, "ab"):
                pass
    except OSError as exc:
        raise ConfigError(
            f"the label database cannot be written ({exc.strerror or type(exc).__name__})",
            where=str(path),
            fix="give a path in a folder you can write to (e.g. ./labels.db), or fix the "
            "permissions",
        ) from None


def _encode_key(key: str) -> str:
    """ASE db refuses string values that parse as numbers ("1234", "12e45"); prefix those."""
    from ase.db.core import convert_str_to_int_float_bool_or_str

    key = str(key)
    if not isinstance(convert_str_to_int_float_bool_or_str(key), str) or key.startswith("x"):
        return "x" + key
    return key


def _decode_key(value: Any) -> str:
    value = str(value)
    return value[1:] if value.startswith("x") else value


def _int_if_integral(v: Any) -> Any:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


class LabelDB:
    """Labelled structures in an ASE database, usable as a sweep :class:`~common.sweep.Store`.

    Parameters
    ----------
    path_or_url : str or path
        SQLite file (created on first write; parent folders are created) or a database URL.
    """

    def __init__(self, path_or_url: str | os.PathLike):
        import ase.db

        text = os.fspath(path_or_url)
        self.url = text
        self.is_url = text.startswith(_URL_SCHEMES)
        try:
            if self.is_url:
                _check_url_driver(text)
                self._db = ase.db.connect(text, use_lock_file=False)
            else:
                p = Path(text)
                if p.is_dir():
                    raise ConfigError(
                        "is a folder, not a database file",
                        where=text,
                        fix="give a file path such as labels.db",
                    )
                p.parent.mkdir(parents=True, exist_ok=True)
                # no ASE lock file: a run killed while writing leaves "<db>.lock" behind, and
                # ASE waits for it forever; SQLite's own locking is enough for one writer
                self._db = ase.db.connect(str(p), type="db", use_lock_file=False)
                if p.exists() and p.stat().st_size > 0:
                    self._db.count()  # fails now, with a clear message, if not an ASE db
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"cannot open the label database ({type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''})",
                where=text,
                fix="give a new file name (e.g. labels.db), an existing ASE SQLite database, "
                "or a postgresql:// URL",
            ) from exc

    @property
    def path(self) -> str:
        """The database's file path or URL."""
        return self.url

    def check_writable(self) -> None:
        """Raise ConfigError if results could not be saved here.

        That is a SQLite file in a folder that cannot be written, or a read-only file; a URL is
        checked by its server.
        """
        if not self.is_url:
            check_writable(Path(self.url))

    # -- Store protocol ----------------------------------------------------------------------

    def done_keys(self) -> set[str]:
        """Structure hashes of every labelled row."""
        keys = set()
        for row in self._db.select(columns=["id", "key_value_pairs"], include_data=False):
            h = row.key_value_pairs.get("structure_hash")
            if h is not None:
                keys.add(_decode_key(h))
        return keys

    def save(self, key: str, result: Mapping[str, Any]) -> None:
        """Write one labelled structure (one transaction: a kill leaves it whole or absent).

        ``result`` holds ``numbers``, ``positions`` (Å), ``cell`` (Å), ``pbc``, ``energy`` (eV),
        ``forces`` (eV/Å), optional ``stress`` (eV/Å^3, Voigt), ``info``, ``index``,
        ``labeller``.
        """
        atoms = _atoms_from_result(result)
        kvp: dict[str, Any] = {
            "structure_hash": _encode_key(key),
            "labeller": str(result.get("labeller", "")),
        }
        if result.get("index") is not None:
            kvp["frame"] = int(result["index"])
        info = dict(result.get("info") or {})
        for k, col in _INFO_KVP.items():
            if k in info and info[k] is not None:
                kvp[col] = info[k]
        data = {"info": info} if info else {}
        self._db.write(atoms, key_value_pairs=kvp, data=data)

    # -- reading -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._db.count()

    def _rows(self) -> Iterator[Any]:
        return iter(self._db.select())

    def to_frames(self, labeller: str | None = None) -> list[Atoms]:
        """Every labelled structure (SinglePointCalculator attached), in input-frame order.

        Parameters
        ----------
        labeller : str, optional
            Only rows made by this labeller (a :meth:`LabellerSpec.key` string).
        """
        rows = [
            r
            for r in self._rows()
            if labeller is None or r.key_value_pairs.get("labeller") == labeller
        ]
        rows.sort(key=lambda r: (r.key_value_pairs.get("frame", 1 << 60), r.id))
        return [_row_to_atoms(r) for r in rows]

    def get(self, key: str) -> Atoms | None:
        """Return the labelled structure stored under ``key`` (a structure hash), or None."""
        for row in self._db.select(structure_hash=_encode_key(key)):
            return _row_to_atoms(row)
        return None

    def frames_for(self, keys: list[str]) -> list[Atoms | None]:
        """Labelled structures for ``keys`` in that order (None where not labelled)."""
        wanted = set(keys)
        found: dict[str, Atoms] = {}
        for row in self._rows():
            h = _decode_key(row.key_value_pairs.get("structure_hash"))
            if h in wanted and h not in found:
                found[h] = _row_to_atoms(row)
        return [_copy_labelled(found[k]) if k in found else None for k in keys]

    def __repr__(self) -> str:
        return f"LabelDB({self.url!r})"


def _atoms_from_result(result: Mapping[str, Any]) -> Atoms:
    atoms = Atoms(
        numbers=np.asarray(result["numbers"], dtype=int),
        positions=np.asarray(result["positions"], dtype=float),
        cell=np.asarray(result["cell"], dtype=float),
        pbc=np.asarray(result["pbc"], dtype=bool),
    )
    props: dict[str, Any] = {
        "energy": float(result["energy"]),
        "forces": np.asarray(result["forces"], dtype=float),
    }
    if result.get("stress") is not None:
        props["stress"] = np.asarray(result["stress"], dtype=float)
    atoms.calc = SinglePointCalculator(atoms, **props)
    return atoms


def _copy_labelled(atoms: Atoms) -> Atoms:
    """Copy ``atoms`` keeping the SinglePointCalculator (``Atoms.copy`` drops it)."""
    new = atoms.copy()
    if atoms.calc is not None:
        new.calc = SinglePointCalculator(
            new,
            **{k: np.copy(v) if hasattr(v, "shape") else v for k, v in atoms.calc.results.items()},
        )
    return new


def _row_to_atoms(row: Any) -> Atoms:
    atoms = row.toatoms()
    data = row.get("data") or {}
    info = dict(data.get("info", {}))
    kvp = row.key_value_pairs
    for k, col in _INFO_KVP.items():
        if col in kvp:
            info[k] = _int_if_integral(kvp[col])
    if "structure_hash" in kvp:
        info["structure_hash"] = _decode_key(kvp["structure_hash"])
    atoms.info.update(info)
    return atoms
