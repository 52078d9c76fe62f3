"""Reference calculators by name, and the checks that run before any compute.

A labeller is a :class:`LabellerSpec` (a name and parameters). Built-in presets:

``emt``
    ASE's effective-medium theory (H C N O Al Ni Cu Pd Ag Pt Au; neutral only). No parameters.
``xtb``
    GFN2-xTB / GFN1-xTB through ``tblite.ase.TBLite`` (molecules and periodic cells; charge and
    spin aware). Parameters: ``method`` ("GFN2-xTB"), ``charge`` (0), ``multiplicity`` (lowest
    possible), ``electronic_temperature_K`` (300), ``accuracy`` (1.0), ``max_iterations`` (250).
``pyscf``
    Hartree-Fock or Kohn-Sham DFT with analytic gradients through PySCF (molecules only).
    Parameters: ``method`` ("pbe"; "hf" or any libxc functional name), ``basis`` ("def2-svp"),
    ``charge`` (0), ``spin`` (= multiplicity - 1; ``multiplicity`` is accepted too),
    ``max_cycle`` (100), ``conv_tol`` (1e-9 Hartree).
``module:attr``
    A user calculator: ``attr`` is an ASE ``Calculator`` class or a factory, called with the
    parameters as keyword arguments. The module must be importable by the worker processes.

Per-frame ``atoms.info["charge"]`` / ``atoms.info["multiplicity"]`` override the parameters.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from typing import Any

from ase import Atoms
from ase.data import atomic_numbers

from common.errors import ConfigError

__all__ = [
    "EMT_ELEMENTS",
    "PRESETS",
    "LabellerSpec",
    "check_supported",
    "configure_for_frame",
    "frame_charge_multiplicity",
    "make_calculator",
    "make_spec",
]

#: elements ASE's EMT has parameters for
EMT_ELEMENTS = ("H", "C", "N", "O", "Al", "Ni", "Cu", "Pd", "Ag", "Pt", "Au")
#: highest atomic number GFN1/GFN2-xTB is parametrised for (Rn)
XTB_MAX_Z = 86
XTB_METHODS = ("GFN2-xTB", "GFN1-xTB")
PRESETS = ("emt", "xtb", "pyscf")

_DEFAULTS: dict[str, dict[str, Any]] = {
    "emt": {},
    "xtb": {
        "method": "GFN2-xTB",
        "charge": 0,
        "multiplicity": None,
        "electronic_temperature_K": 300.0,
        "accuracy": 1.0,
        "max_iterations": 250,
    },
    "pyscf": {
        "method": "pbe",
        "basis": "def2-svp",
        "charge": 0,
        "spin": None,
        "max_cycle": 100,
        "conv_tol": 1e-9,
    },
}

_CALC_FIX = (
    "use --calc emt, xtb, pyscf, or module:attr for your own ASE calculator "
    "(e.g. mypkg.calcs:MyCalculator)"
)


def _canonical_name(name: str) -> str:
    name = str(name).strip()
    return name.lower() if name.lower() in PRESETS else name


@dataclass(frozen=True, eq=False)
class LabellerSpec:
    """A labeller: a calculator name and its parameters.

    The name is ``emt``, ``xtb``, ``pyscf`` or ``module:attr``; the parameters are described in the
    module docstring (units in the names, energies in eV).

    Picklable; :meth:`key` is a canonical string (defaults filled in, ``None`` dropped) that
    enters every structure's cache hash, so two specs that label the same way share a cache.
    """

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def normalized(self) -> LabellerSpec:
        """Return the same labeller with the preset's defaults filled in and aliases resolved."""
        name = _canonical_name(self.name)
        params = {k: v for k, v in dict(self.params).items() if v is not None}
        if name == "pyscf" and "multiplicity" in params:
            mult = params.pop("multiplicity")
            if "spin" in params and params["spin"] != _as_int(mult, "multiplicity") - 1:
                raise ConfigError(
                    f"spin={params['spin']} and multiplicity={mult} disagree",
                    where="pyscf parameters",
                    fix="give only one of them (spin = multiplicity - 1)",
                )
            params["spin"] = _as_int(mult, "multiplicity") - 1
        if name == "xtb" and "method" in params:
            params["method"] = _xtb_method(params["method"])
        if name == "pyscf" and "method" in params:
            params["method"] = str(params["method"]).lower()
        if name == "pyscf" and "basis" in params:
            params["basis"] = str(params["basis"]).lower()
        if name in _DEFAULTS:
            unknown = sorted(set(params) - set(_DEFAULTS[name]))
            if unknown:
                valid = ", ".join(_DEFAULTS[name]) or "none"
                raise ConfigError(
                    f"parameter {unknown[0]!r} does not apply to calculator {name!r}",
                    where=f"--calc {name}",
                    fix=f"parameters of {name!r}: {valid}; leave the option out",
                )
            params = {**_DEFAULTS[name], **params}
            params = {k: _coerce(k, v) for k, v in params.items() if v is not None}
        return LabellerSpec(name, params)

    def key(self) -> str:
        """Return the normalised spec as canonical JSON (the labeller's part of a label key)."""
        spec = self.normalized()
        return json.dumps(
            {"calc": spec.name, "params": spec.params},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )

    def label(self) -> str:
        """Short human-readable form, e.g. ``xtb(GFN2-xTB)``."""
        spec = self.normalized()
        method = spec.params.get("method")
        return f"{spec.name}({method})" if method else spec.name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabellerSpec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())


_INT_PARAMS = ("charge", "multiplicity", "spin", "max_iterations", "max_cycle")
_FLOAT_PARAMS = ("electronic_temperature_K", "accuracy", "conv_tol")


def _coerce(name: str, value: Any) -> Any:
    """Numbers in one canonical type, so 300 and 300.0 give the same cache key."""
    if name in _INT_PARAMS:
        return _as_int(value, name)
    if name in _FLOAT_PARAMS:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"{name} must be a number, got {value!r}", fix=f"give a number for {name}"
            ) from None
    return value


def make_spec(name: str | LabellerSpec, **params: Any) -> LabellerSpec:
    """Make a validated, normalised :class:`LabellerSpec` (``None`` parameters are dropped)."""
    if isinstance(name, LabellerSpec):
        spec = LabellerSpec(name.name, {**name.params, **params})
    else:
        spec = LabellerSpec(str(name), params)
    _check_spec(spec)
    return spec.normalized()


def _as_int(value: Any, what: str) -> int:
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = float("nan")
    if f != f or f != int(f):
        raise ConfigError(
            f"{what} must be an integer, got {value!r}", fix=f"give an integer {what}"
        )
    return int(f)


def _xtb_method(method: Any) -> str:
    for m in XTB_METHODS:
        if str(method).strip().lower() in (m.lower(), m.lower().replace("-xtb", "")):
            return m
    raise ConfigError(
        f"unknown xtb method {method!r}",
        where="--method",
        fix=f"use one of {', '.join(XTB_METHODS)}",
    )


def _load_user_attr(name: str) -> Any:
    module_name, _, attr = name.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"unknown calculator {name!r}", where="--calc", fix=_CALC_FIX)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            f"cannot import module {module_name!r} for calculator {name!r} "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            where="--calc",
            fix="check the module name and that it is importable (on PYTHONPATH or "
            "installed); " + _CALC_FIX,
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r}",
                where=f"--calc {name}",
                fix="give module:attr naming an ASE Calculator class or a "
                "factory function that returns one",
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(
            f"{name!r} is not a Calculator class or factory",
            where=f"--calc {name}",
            fix="point module:attr at a Calculator class or a factory function",
        )
    return obj


def _check_spec(spec: LabellerSpec) -> LabellerSpec:
    name = _canonical_name(spec.name)
    if name not in PRESETS and ":" not in name:
        raise ConfigError(
            f"unknown calculator {spec.name!r} (valid: {', '.join(PRESETS)}, or module:attr)",
            where="--calc",
            fix=_CALC_FIX,
        )
    if ":" in name:
        _load_user_attr(name)
        return spec.normalized()
    norm = spec.normalized()
    p = norm.params
    if name == "xtb":
        if float(p["electronic_temperature_K"]) <= 0:
            raise ConfigError(
                "electronic temperature must be > 0 K",
                where="--electronic-temperature-K",
                fix="give e.g. 300 (molecules) or 1000-5000 (metals)",
            )
        if int(p["max_iterations"]) < 1:
            raise ConfigError(
                "max_iterations must be >= 1", where="xtb parameters", fix="give e.g. 250"
            )
    if name == "pyscf":
        _check_pyscf_method(p["method"])
    for k in ("charge",):
        if k in p:
            _as_int(p[k], k)
    if "multiplicity" in p and _as_int(p["multiplicity"], "multiplicity") < 1:
        raise ConfigError(
            f"multiplicity must be >= 1, got {p['multiplicity']}",
            where="--multiplicity",
            fix="give 1 (singlet), 2 (doublet), ...",
        )
    if "spin" in p and _as_int(p["spin"], "spin") < 0:
        raise ConfigError(
            f"spin (2S) must be >= 0, got {p['spin']}",
            where="pyscf spin",
            fix="give multiplicity >= 1 (spin = multiplicity - 1)",
        )
    return norm


def _check_pyscf_method(method: str) -> None:
    if method in ("hf", "rhf", "uhf"):
        return
    try:
        from pyscf.dft import libxc

        libxc.parse_xc(method)
    except ImportError as exc:
        raise ConfigError(
            "pyscf is not installed", where="--calc pyscf", fix="run scripts/install_env.sh"
        ) from exc
    except Exception as exc:
        raise ConfigError(
            f"unknown pyscf method {method!r}",
            where="--method",
            fix="use hf or a functional name libxc knows (pbe, b3lyp, pbe0, wb97x, ...)",
        ) from exc


def frame_charge_multiplicity(atoms: Atoms, spec: LabellerSpec) -> tuple[int, int]:
    """Total charge (e) and spin multiplicity for ``atoms`` under ``spec``.

    ``atoms.info`` wins over the spec's parameters; without either, the charge is 0 and the
    multiplicity the lowest the electron count allows (1 for even, 2 for odd).
    """
    p = spec.normalized().params
    charge = atoms.info.get("charge", p.get("charge", 0))
    charge = _as_int(charge if charge is not None else 0, "charge")
    mult = atoms.info.get("multiplicity")
    if mult is None:
        if p.get("multiplicity") is not None:
            mult = p["multiplicity"]
        elif p.get("spin") is not None:
            mult = _as_int(p["spin"], "spin") + 1
    if mult is None:
        n_el = int(sum(atoms.numbers)) - charge
        mult = 1 if n_el % 2 == 0 else 2
    return charge, _as_int(mult, "multiplicity")


def _suggest(symbol: str) -> str:
    z = atomic_numbers.get(symbol, 0)
    if 0 < z <= XTB_MAX_Z:
        return f"use --calc xtb (GFN2-xTB covers H-Rn) or a calculator made for {symbol}"
    return f"use a calculator that supports {symbol} (module:attr, e.g. a VASP or QE setup)"


def check_supported(atoms: Atoms, spec: LabellerSpec, where: str = "structure") -> None:
    """Raise :class:`ConfigError` if ``spec`` cannot label ``atoms``; nothing is computed.

    Checks the calculator name and parameters, the elements the preset covers, the charge and
    multiplicity (integer, ``multiplicity >= 1``, electron-count parity, no more unpaired
    electrons than electrons) and periodicity (pyscf is molecular only). ``where`` names the
    frame in the message (e.g. ``"structs.extxyz frame 3"``).
    """
    norm = _check_spec(spec)
    name = norm.name
    if ":" in name:
        return
    symbols = sorted(set(atoms.get_chemical_symbols()), key=lambda s: atomic_numbers[s])
    if name == "emt":
        for s in symbols:
            if s not in EMT_ELEMENTS:
                raise ConfigError(
                    f"element {s} is not supported by calculator 'emt' (it has parameters for "
                    f"{' '.join(EMT_ELEMENTS)})",
                    where=where,
                    fix=_suggest(s),
                )
        charge = atoms.info.get("charge", 0) or 0
        if _as_int(charge, "charge") != 0:
            raise ConfigError(
                f"calculator 'emt' cannot label a charged structure (charge {charge})",
                where=where,
                fix="use --calc xtb or --calc pyscf for charged structures",
            )
        return
    if name == "xtb":
        for s in symbols:
            if atomic_numbers[s] > XTB_MAX_Z or atomic_numbers[s] < 1:
                raise ConfigError(
                    f"element {s} is not supported by {norm.params['method']} (H-Rn only)",
                    where=where,
                    fix=_suggest(s),
                )
    if name == "pyscf":
        if atoms.pbc.any():
            raise ConfigError(
                "calculator 'pyscf' labels molecules only; this frame is "
                f"periodic (pbc={atoms.pbc.tolist()})",
                where=where,
                fix="use --calc xtb for periodic cells, or set pbc=False for a molecule",
            )
        _check_pyscf_basis(symbols, norm.params["basis"], where)
    charge, mult = _charge_mult_checked(atoms, norm, where)
    n_el = int(sum(atoms.numbers)) - charge
    if n_el < 0:
        raise ConfigError(
            f"charge {charge} leaves {n_el} electrons",
            where=where,
            fix="check the charge (info['charge'] or --charge)",
        )
    unpaired = mult - 1
    if unpaired > n_el:
        raise ConfigError(
            f"multiplicity {mult} needs {unpaired} unpaired electrons but the "
            f"structure has {n_el} electrons",
            where=where,
            fix="give a multiplicity <= number of electrons + 1",
        )
    if (n_el - unpaired) % 2:
        allowed = "1, 3, 5, ..." if n_el % 2 == 0 else "2, 4, 6, ..."
        raise ConfigError(
            f"multiplicity {mult} is impossible with {n_el} electrons (charge {charge}): "
            f"{'an even' if n_el % 2 == 0 else 'an odd'} electron count needs multiplicity "
            f"{allowed}",
            where=where,
            fix=f"give --multiplicity {1 if n_el % 2 == 0 else 2} (or info['multiplicity']), "
            "or change the charge",
        )


def _charge_mult_checked(atoms: Atoms, spec: LabellerSpec, where: str) -> tuple[int, int]:
    try:
        charge, mult = frame_charge_multiplicity(atoms, spec)
    except ConfigError as exc:
        raise ConfigError(exc.what, where=where, fix=exc.fix) from exc
    if mult < 1:
        raise ConfigError(
            f"multiplicity must be >= 1, got {mult}",
            where=where,
            fix="give 1 (singlet), 2 (doublet), 3 (triplet), ...",
        )
    return charge, mult


def _check_pyscf_basis(symbols: list[str], basis: str, where: str) -> None:
    try:
        from pyscf import gto
    except ImportError as exc:
        raise ConfigError(
            "pyscf is not installed", where="--calc pyscf", fix="run scripts/install_env.sh"
        ) from exc
    for s in symbols:
        try:
            shells = gto.basis.load(basis, s)
        except Exception:
            shells = None
        if not shells:
            raise ConfigError(
                f"basis {basis!r} has no functions for element {s} (or is unknown to pyscf)",
                where=where,
                fix="choose a basis that covers it (def2-svp covers H-Rn) with --basis",
            )


def make_calculator(spec: LabellerSpec | str, atoms: Atoms | None = None) -> Any:
    """Make a new ASE calculator for ``spec`` (for ``atoms``' charge/multiplicity if given).

    Framework imports happen here, lazily. ``xtb`` output is silenced (``verbosity=0``) and the
    wavefunction is not reused between structures, so labels do not depend on their order.
    """
    if isinstance(spec, str):
        spec = LabellerSpec(spec, {})
    norm = _check_spec(spec)
    p = dict(norm.params)
    if norm.name == "emt":
        from ase.calculators.emt import EMT

        calc: Any = EMT()
    elif norm.name == "xtb":
        from tblite.ase import TBLite

        calc = TBLite(
            method=p["method"],
            charge=int(p.get("charge", 0)),
            multiplicity=p.get("multiplicity"),
            electronic_temperature=float(p["electronic_temperature_K"]),
            accuracy=float(p["accuracy"]),
            max_iterations=int(p["max_iterations"]),
            verbosity=0,
            cache_api=False,
        )
    elif norm.name == "pyscf":
        from common.labels.pyscf_calculator import PySCFCalculator

        calc = PySCFCalculator(**p)
    else:
        factory = _load_user_attr(norm.name)
        calc = factory(**p)
    if atoms is not None:
        configure_for_frame(calc, norm, atoms)
    return calc


def configure_for_frame(calc: Any, spec: LabellerSpec, atoms: Atoms) -> None:
    """Set the frame's charge and multiplicity on a preset calculator (no-op for others)."""
    name = _canonical_name(spec.name)
    if name not in ("xtb", "pyscf"):
        return
    charge, mult = frame_charge_multiplicity(atoms, spec)
    if name == "xtb":
        calc.set(charge=charge, multiplicity=mult)
    else:
        calc.set(charge=charge, spin=mult - 1)
