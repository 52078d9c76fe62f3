"""Structures for the GaN case.

Wurtzite bulk and supercells, (0001) slabs, point defects, an interstitial search, and training
configurations sampled across temperatures.

* :func:`wurtzite` -- the 4-atom wurtzite cell (a, c, u; the seed's a = 3.189, c = 5.185 Å by
  default), :func:`relaxed_lattice` -- a, c and u of a given potential (symmetry-constrained
  relaxation of cell and positions), :func:`supercell`, :func:`slab_0001`.
* :func:`check_wurtzite` -- refuses a structure that is not a perfect wurtzite GaN crystal
  (composition, every atom 4-fold coordinated by the other element, space group P6_3mc).
* :func:`make_defect` -- V_Ga, V_N, Ga_N, N_Ga, Ga_i, N_i and three simple complexes (the
  nearest-neighbour divacancy V_Ga+V_N, the antisite pair Ga_N+N_Ga -- a Ga–N bond with its
  two atoms swapped -- and the Ga Frenkel pair V_Ga+Ga_i) in a perfect supercell.
  **Simplification**: built with plain ASE, not pymatgen's defect tools
  (``pymatgen-analysis-defects`` is not in the environment); the site is the atom of the right
  element nearest the cell centre unless given, and only neutral defects are built (a
  potential has no electrons: charge states need DFT).
* :func:`interstitial_candidates` -- starting sites for an interstitial: the centres of the
  largest voids of the crystal (local maxima of the distance to the nearest atom on a grid:
  the octahedral and tetrahedral cages of wurtzite) plus split (dumbbell) configurations
  around a host atom of the same element, along c and in the basal plane.
* :func:`interstitial_search` -- each candidate relaxed (quench), then all of them annealed
  together at a temperature in one batched :func:`common.md.runner.run_md` job and relaxed
  again (anneal-and-quench); reports every start, the lowest minimum found and the spread.
* :mod:`semiconductors.dislocation` -- a c-axis screw dislocation (cylinder with a fixed
  outer shell), a Burgers circuit and its ln R energy.
* :func:`training_configurations` -- rattled and strained copies of the given cells, run for
  a short Langevin MD at each temperature (one batched run), frames taken from the
  trajectories: the seed's "300/600/900/1200 K" sampling at a chosen size.

Units: Å, eV, K.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError

#: the seed's wurtzite lattice (experiment), Å
SEED_A_A, SEED_C_A = 3.189, 5.185
IDEAL_U = 0.375
#: Ga-N nearest-neighbour shell used to check coordination, Å (bond 1.95 Å, next 3.2 Å)
BOND_CUTOFF_A = 2.4
DEFECT_KINDS = ("V_Ga", "V_N", "Ga_N", "N_Ga", "Ga_i", "N_i", "V_Ga+V_N", "Ga_N+N_Ga",
                "V_Ga+Ga_i")
#: the Frenkel pair's interstitial sits in the void nearest its vacancy that is at least this
#: far from it, Å (closer pairs recombine on relaxation)
FRENKEL_SEPARATION_A = 3.5
#: dumbbell half-length of a split interstitial, Å (N2 bond 1.1 Å; Ga-Ga ~2.5 Å)
SPLIT_HALF_A = {"N": 0.65, "Ga": 1.25}


# -- bulk, supercells, slabs ----------------------------------------------------------------
def wurtzite(a_A: float = SEED_A_A, c_A: float | None = None, u: float = IDEAL_U) -> Atoms:
    """Return the 4-atom wurtzite GaN cell (c along z).

    With ``c_A`` None, the ideal c = a √(8/3).
    """
    from ase.build import bulk

    for name, v in (("a_A", a_A), ("c_A", c_A if c_A is not None else a_A), ("u", u)):
        if not (np.isfinite(v) and v > 0):
            raise ConfigError(f"{name} must be > 0 (got {v})", where=name,
                              fix="give the lattice in Å, e.g. a 3.189, c 5.185, u 0.375")
    c = a_A * np.sqrt(8.0 / 3.0) if c_A is None else c_A
    atoms = bulk("GaN", "wurtzite", a=a_A, c=c, u=u)
    atoms.info.update({"a_A": float(a_A), "c_A": float(c), "u": float(u)})
    return atoms


def relaxed_lattice(calc, a_A: float = SEED_A_A, c_A: float | None = None,
                    fmax_eV_A: float = 1e-5, steps: int = 300) -> dict:
    """Return a, c (Å), u and the energy per formula unit (eV) of wurtzite GaN.

    With the ASE calculator ``calc``: cell and positions relaxed with the P6_3mc symmetry kept
    (``FixSymmetry`` + ``FrechetCellFilter``, BFGS), from the given start.
    """
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms = wurtzite(a_A, c_A)
    atoms.calc = calc
    atoms.set_constraint(FixSymmetry(atoms))
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=fmax_eV_A, steps=steps)
    cellpar = atoms.cell.cellpar()
    return {"a_A": float(cellpar[0]), "c_A": float(cellpar[2]), "u": wurtzite_u(atoms),
            "energy_eV_per_formula": float(atoms.get_potential_energy() / 2.0)}


def wurtzite_u(atoms: Atoms) -> float:
    """Return the internal parameter u of a wurtzite cell: the Ga-N bond along c over c."""
    from ase.geometry import find_mic

    ga = int(np.nonzero(atoms.numbers == 31)[0][0])
    n_idx = np.nonzero(atoms.numbers == 7)[0]
    d, _ = find_mic(atoms.positions[n_idx] - atoms.positions[ga], atoms.cell, True)
    near = np.linalg.norm(d, axis=1) < BOND_CUTOFF_A
    return float(np.abs(d[near, 2]).max() / atoms.cell.cellpar()[2])


def supercell(cell: Atoms, repeat: Sequence[int] = (3, 3, 2)) -> Atoms:
    """``cell`` repeated (na, nb, nc) times; (3, 3, 2) of the 4-atom cell has 72 atoms."""
    rep = tuple(int(r) for r in repeat)
    if len(rep) != 3 or min(rep) < 1:
        raise ConfigError(f"repeat must be three integers >= 1 (got {tuple(repeat)})",
                          where="repeat", fix="e.g. 3,3,2 (72 atoms)")
    out = cell.repeat(rep)
    out.info.update(cell.info)
    out.info["repeat"] = list(rep)
    return out


def slab_0001(cell: Atoms, size: Sequence[int] = (3, 3), bilayers: int = 4,
              vacuum_A: float = 12.0, fixed_bilayers: int = 1) -> Atoms:
    """Build a (0001) slab of ``bilayers`` Ga-N bilayers (two per c).

    The slab is made of a (na, nb) surface cell, ``vacuum_A`` above, periodic in x and y; the
    bottom ``fixed_bilayers`` held fixed (FixAtoms). The slab is cut through the bonds along c,
    the surfaces are bare (no passivation): with ASE's wurtzite (the bond along c points from N
    up to Ga, i.e. the +z face is N-polar) the top plane is N, the bottom plane Ga, one dangling
    bond each.
    """
    from ase.constraints import FixAtoms

    check_wurtzite(cell)
    if bilayers < 1 or fixed_bilayers < 0 or fixed_bilayers >= bilayers:
        raise ConfigError(f"need bilayers >= 1 and 0 <= fixed_bilayers < bilayers (got "
                          f"{bilayers}, {fixed_bilayers})", where="bilayers",
                          fix="e.g. 4 bilayers with 1 fixed")
    if vacuum_A <= 0:
        raise ConfigError(f"vacuum must be > 0 Å (got {vacuum_A})", where="vacuum_A",
                          fix="e.g. 12 Å")
    n_c = (bilayers + 1) // 2
    slab = supercell(cell, (int(size[0]), int(size[1]), n_c))
    # bilayer of each atom: a Ga plane and the N plane 0.125 c above it (ASE's wurtzite)
    c = slab.cell[2, 2] / n_c
    z0 = slab.positions[slab.numbers == 31, 2].min()
    layer = np.floor((slab.positions[:, 2] - z0 + 0.1 * c) / (c / 2)).astype(int)
    slab = slab[layer < bilayers]
    layer = layer[layer < bilayers]
    slab.positions[:, 2] -= slab.positions[:, 2].min() - 1.0
    cellv = slab.cell.array.copy()
    cellv[2] = [0.0, 0.0, slab.positions[:, 2].max() + vacuum_A]
    slab.set_cell(cellv)
    slab.pbc = (True, True, False)
    slab.set_constraint(FixAtoms(mask=layer < fixed_bilayers))
    slab.info.update({"surface": "(0001)", "bilayers": bilayers,
                      "fixed_bilayers": fixed_bilayers})
    return slab


def check_wurtzite(atoms: Atoms, where: str = "structure") -> None:
    """Raise a DataError unless ``atoms`` is perfect wurtzite GaN.

    3D-periodic, Ga:N = 1:1, every atom bonded to exactly 4 atoms of the other element within 2.4 Å,
    and space group P6_3mc (186, spglib, tolerance 0.1 Å) -- zincblende passes the first two, not
    the last.
    """
    import spglib

    fix = "give a perfect wurtzite GaN crystal (e.g. `mlp-semiconductors build`)"
    syms = atoms.get_chemical_symbols()
    if not (atoms.pbc.all() and atoms.cell.rank == 3):
        raise DataError("not a 3D-periodic crystal, wurtzite is required", where=where, fix=fix)
    n_ga, n_n = syms.count("Ga"), syms.count("N")
    if n_ga != n_n or n_ga + n_n != len(atoms) or n_ga == 0:
        raise DataError(f"composition {atoms.get_chemical_formula()} is not GaN (wurtzite "
                        "is required)", where=where, fix=fix)
    coord, wrong = coordination(atoms)
    if (coord != 4).any() or wrong.any():
        k = int(np.nonzero((coord != 4) | wrong)[0][0])
        raise DataError(f"atom {k} ({syms[k]}) has {coord[k]} neighbours within "
                        f"{BOND_CUTOFF_A} Å ({wrong[k]} of its own element): not wurtzite",
                        where=where, fix=fix)
    sg = spglib.get_spacegroup((atoms.cell.array, atoms.get_scaled_positions(),
                                atoms.numbers), symprec=0.1)
    if sg is None or not sg.endswith("(186)"):
        raise DataError(f"space group {sg} is not wurtzite's P6_3mc (186)", where=where,
                        fix=fix)


def coordination(atoms: Atoms, cutoff_A: float = BOND_CUTOFF_A
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Count per atom the neighbours within ``cutoff_A`` and those of its own element.

    The latter are wrong bonds in GaN.
    """
    from ase.neighborlist import neighbor_list

    i, j = neighbor_list("ij", atoms, cutoff_A)
    n = len(atoms)
    coord = np.bincount(i, minlength=n)
    same = np.bincount(i, weights=(atoms.numbers[i] == atoms.numbers[j]), minlength=n)
    return coord, same.astype(int)


# -- point defects ----------------------------------------------------------------------------
def _check_site(host: Atoms, position) -> np.ndarray:
    pos = np.asarray(position, dtype=float)
    if pos.shape != (3,) or not np.isfinite(pos).all():
        raise ConfigError(f"a site is three Cartesian coordinates in Å (got {position!r})",
                          where="position", fix="give x,y,z in Å inside the cell")
    frac = np.linalg.solve(host.cell.array.T, pos)
    if (frac < -1e-9).any() or (frac >= 1.0 - 1e-9).any():
        raise DataError(f"defect site ({', '.join(f'{x:.3f}' for x in pos)}) Å is outside "
                        f"the cell (fractional {', '.join(f'{x:.3f}' for x in frac)})",
                        where="position", fix="give a site inside the cell (fractional "
                        "coordinates in [0, 1))")
    return pos


def _nearest_of(host: Atoms, element: str, point: np.ndarray) -> int:
    from ase.geometry import find_mic

    idx = np.nonzero(np.array(host.get_chemical_symbols()) == element)[0]
    d, _ = find_mic(host.positions[idx] - point, host.cell, host.pbc)
    return int(idx[np.argmin(np.linalg.norm(d, axis=1))])


def _site_index(host: Atoms, element: str, index: int | None, position) -> int:
    if index is not None:
        if not 0 <= int(index) < len(host):
            raise DataError(f"atom index {index} is outside the cell's {len(host)} atoms",
                            where="index", fix=f"give 0..{len(host) - 1}")
        if host[int(index)].symbol != element:
            raise DataError(f"atom {index} is {host[int(index)].symbol}, not {element}",
                            where="index", fix=f"give the index of a {element} atom")
        return int(index)
    point = _check_site(host, position) if position is not None else \
        host.cell.array.sum(0) / 2.0
    return _nearest_of(host, element, point)


def make_defect(host: Atoms, kind: str, *, index: int | None = None, position=None,
                check_host: bool = True) -> Atoms:
    """Build a neutral point defect in the perfect wurtzite supercell ``host``.

    Parameters
    ----------
    host : perfect wurtzite GaN (checked by :func:`check_wurtzite` unless ``check_host`` is
        False)
    kind : V_Ga, V_N (vacancies), Ga_N, N_Ga (antisites: Ga on an N site, ...), Ga_i, N_i
        (interstitials), and the complexes V_Ga+V_N (nearest-neighbour divacancy), Ga_N+N_Ga
        (antisite pair: a Ga atom and its nearest N swapped) and V_Ga+Ga_i (Frenkel pair: the
        Ga removed and put back in the largest-void site nearest the vacancy that is at least
        :data:`FRENKEL_SEPARATION_A` away; at stoichiometry, so their formation energies do
        not depend on the chemical potentials)
    index : the host atom to remove or replace (default: the one of the right element
        nearest ``position``, else nearest the cell centre)
    position : Cartesian site, Å, inside the cell: an interstitial's position (default: the
        largest void nearest the centre), or where to look for the atom

    Returns
    -------
    Atoms
        The defective cell, unrelaxed; its description is in ``info`` (``defect``,
        ``defect_site_A``, ``host_atoms``).
    """
    if kind not in DEFECT_KINDS:
        raise ConfigError(f"unknown defect {kind!r}", where="kind",
                          fix=f"use one of {', '.join(DEFECT_KINDS)}")
    if check_host:
        check_wurtzite(host, where="host")
    atoms = host.copy()
    atoms.info = {k: v for k, v in host.info.items() if k in ("a_A", "c_A", "u", "repeat")}
    if kind in ("Ga_i", "N_i"):
        if index is not None:
            raise ConfigError("an interstitial takes a position, not an atom index",
                              where="index", fix="give position=(x, y, z) in Å")
        site = _check_site(host, position) if position is not None else \
            interstitial_candidates(host, kind[:-2], split=False)[0]["position_A"]
        atoms.append(kind[:-2])
        atoms.positions[-1] = site
    else:
        element = {"V_Ga": "Ga", "V_N": "N", "Ga_N": "N", "N_Ga": "Ga",
                   "V_Ga+V_N": "Ga", "Ga_N+N_Ga": "Ga", "V_Ga+Ga_i": "Ga"}[kind]
        k = _site_index(host, element, index, position)
        site = host.positions[k].copy()
        if kind in ("Ga_N", "N_Ga"):
            atoms[k].symbol = kind[:2].rstrip("_")
        elif kind == "Ga_N+N_Ga":
            j = _nearest_of(host, "N", site)
            atoms[k].symbol, atoms[j].symbol = "N", "Ga"
        elif kind == "V_Ga+Ga_i":
            del atoms[[k]]
            atoms.append("Ga")
            atoms.positions[-1] = _frenkel_site(host, site)
        else:
            drop = [k]
            if kind == "V_Ga+V_N":
                drop.append(_nearest_of(host, "N", site))
            del atoms[drop]
    atoms.info.update({"defect": kind, "defect_site_A": [float(x) for x in site],
                       "host_atoms": len(host)})
    return atoms


def _frenkel_site(host: Atoms, vacancy: np.ndarray) -> np.ndarray:
    """Return the copy of the crystal's largest void nearest ``vacancy``.

    Minimum image, at >= FRENKEL_SEPARATION_A from it.
    """
    from ase.geometry import find_mic

    rep = np.array(host.info.get("repeat", (1, 1, 1)), dtype=int)
    prim_cell = host.cell.array / rep[:, None]
    first = interstitial_candidates(host, "Ga", split=False)[0]["position_A"]
    copies = first + np.array(list(np.ndindex(*rep))) @ prim_cell
    _, dist = find_mic(copies - vacancy, host.cell, host.pbc)
    ok = np.nonzero(dist >= FRENKEL_SEPARATION_A)[0]
    if not len(ok):
        raise DataError(f"no void is {FRENKEL_SEPARATION_A} Å from the vacancy in this cell",
                        where="host", fix="use a larger supercell (e.g. 3x3x2)")
    return np.asarray(copies[int(ok[np.argmin(dist[ok])])], dtype=float)


def interstitial_candidates(host: Atoms, element: str, *, split: bool = True,
                            grid_spacing_A: float = 0.2, min_void_A: float = 1.2
                            ) -> list[dict]:
    """Return starting sites for an ``element`` interstitial in the supercell ``host``.

    Nearest the cell centre first within each type.

    Voids: the distance to the nearest atom on a grid over the crystal's 4-atom cell (host's
    lattice divided by its ``repeat``, else the whole cell), its local maxima with a radius
    >= ``min_void_A`` merged within 0.5 Å; each distinct void (by radius) is placed at its
    copy nearest the supercell's centre. Split: a host atom of ``element`` nearest the centre
    moved by -d and the interstitial put at +d along c, and along a (d from
    :data:`SPLIT_HALF_A`). Returns dicts ``{"label", "position_A", "void_radius_A"}``, and for
    split sites ``"move": (index, new position)``.
    """
    from ase.geometry import find_mic

    rep = np.array(host.info.get("repeat", (1, 1, 1)), dtype=int)
    prim_cell = host.cell.array / rep[:, None]
    frac_atoms = np.linalg.solve(prim_cell.T, host.positions.T).T % 1.0
    n_grid = np.maximum(4, np.ceil(np.linalg.norm(prim_cell, axis=1) / grid_spacing_A)
                        ).astype(int)
    g = np.stack(np.meshgrid(*(np.arange(n) / n for n in n_grid), indexing="ij"), -1)
    pts = g.reshape(-1, 3) @ prim_cell
    atoms_cart = np.unique(np.round(frac_atoms, 6), axis=0) @ prim_cell
    d, _ = find_mic((pts[:, None, :] - atoms_cart[None]).reshape(-1, 3), prim_cell, True)
    r = np.linalg.norm(d, axis=1).reshape(len(pts), len(atoms_cart)).min(1).reshape(n_grid)
    local_max = np.ones_like(r, dtype=bool)
    for shift in np.ndindex(3, 3, 3):
        if shift != (1, 1, 1):
            local_max &= r >= np.roll(r, tuple(s - 1 for s in shift), axis=(0, 1, 2))
    voids = _refined_voids([g[ix] @ prim_cell for ix in zip(
        *np.nonzero(local_max & (r >= min_void_A)), strict=True)], atoms_cart, prim_cell)
    centre = host.cell.array.sum(0) / 2.0
    out = []
    for k, (rad, p) in enumerate(voids):
        # the copy of this void nearest the centre of the supercell
        shifts = np.array(list(np.ndindex(*rep))) @ prim_cell
        copies = p + shifts
        best = copies[np.argmin(np.linalg.norm(copies - centre, axis=1))]
        out.append({"label": f"void {k} (r = {rad:.2f} Å)", "position_A": best,
                    "void_radius_A": rad})
    if split:
        k = _nearest_of(host, element, centre)
        half = SPLIT_HALF_A[element]
        for name, axis in (("c", host.cell.array[2]), ("a", host.cell.array[0])):
            e = axis / np.linalg.norm(axis)
            out.append({"label": f"split <{name}> at atom {k}",
                        "position_A": host.positions[k] + half * e, "void_radius_A": 0.0,
                        "move": (k, host.positions[k] - half * e)})
    return out


def _refined_voids(points, atoms_cart: np.ndarray, cell: np.ndarray
                   ) -> list[tuple[float, np.ndarray]]:
    """Return the voids: grid maxima of the distance to the nearest atom, refined.

    Refined to the true local maxima (Nelder-Mead), merged within 0.3 Å, one per distinct radius
    (0.02 Å), largest first.
    """
    from ase.geometry import find_mic
    from scipy.optimize import minimize

    images = (atoms_cart[None] + (np.array(list(np.ndindex(3, 3, 3))) - 1)[:, None] @ cell
              ).reshape(-1, 3)

    def radius(p):
        return float(np.sqrt(((images - p) ** 2).sum(1).min()))

    found: list[tuple[float, np.ndarray]] = []
    for p in points:
        res = minimize(lambda x: -radius(x), p, method="Nelder-Mead",
                       options={"xatol": 1e-4, "fatol": 1e-6})
        q, rad = res.x, -float(res.fun)
        if all(np.linalg.norm(find_mic(q - f[1], cell, True)[0]) > 0.3 for f in found):
            found.append((rad, q))
    found.sort(key=lambda f: -f[0])
    distinct: list[tuple[float, np.ndarray]] = []
    for rad, q in found:
        if all(abs(rad - d[0]) > 0.02 for d in distinct):
            distinct.append((rad, q))
    return distinct


def interstitial_structures(host: Atoms, element: str, **kw) -> list[Atoms]:
    """Build one unrelaxed structure per :func:`interstitial_candidates` site.

    ``info["start"]`` names the site.
    """
    from ase.geometry import wrap_positions

    kind = f"{element}_i"
    frames = []
    for c in interstitial_candidates(host, element, **kw):
        atoms = make_defect(host, kind, position=wrap_positions(c["position_A"][None],
                                                                 host.cell, pbc=True)[0],
                            check_host=False)
        if "move" in c:
            k, new = c["move"]
            atoms.positions[k] = new
        atoms.info["start"] = c["label"]
        frames.append(atoms)
    return frames


# -- relaxation and the interstitial search --------------------------------------------------
def as_calculator(potential):
    """Return an ASE calculator for a BatchedPotential.

    Its own ``calculator()`` where it has one, else
    :class:`~common.potential.calculator.BatchedPotentialCalculator` (an ASE calculator is returned
    as it is).
    """
    from ase.calculators.calculator import BaseCalculator

    if isinstance(potential, BaseCalculator):
        return potential
    if hasattr(potential, "calculator"):  # e.g. the reference's own (LAMMPS) calculator
        return potential.calculator()
    from common.potential.calculator import BatchedPotentialCalculator

    return BatchedPotentialCalculator(potential)


def relax(atoms: Atoms, potential, fmax_eV_A: float = 0.01, steps: int = 1000) -> Atoms:
    """Positions relaxed at fixed cell (ASE's LBFGS) with a calculator or BatchedPotential.

    The result holds ``info["energy_eV"]``, ``info["fmax_eV_A"]``, ``info["relax_steps"]`` and
    ``info["converged"]``.
    """
    from ase.optimize import LBFGS

    work = atoms.copy()
    work.calc = as_calculator(potential)
    opt = LBFGS(work, logfile=None, maxstep=0.1)
    converged = bool(opt.run(fmax=fmax_eV_A, steps=steps))
    out = work.copy()
    out.info.update({"energy_eV": float(work.get_potential_energy()),
                     "fmax_eV_A": float(np.linalg.norm(work.get_forces(), axis=1).max()),
                     "relax_steps": int(opt.nsteps), "converged": converged})
    out.calc = None
    return out


def interstitial_search(host: Atoms, element: str, potential, outdir: str | Path, *,
                        temperature_K: float = 900.0, anneal_steps: int = 2000,
                        replicas: int = 2, timestep_fs: float = 1.0, fmax_eV_A: float = 0.01,
                        seed: int = 0, progress: bool = False) -> dict:
    """Lowest-energy ``element`` interstitial found from the candidate sites.

    1. each :func:`interstitial_candidates` start relaxed at fixed cell (quench);
    2. all quenched structures x ``replicas`` annealed together at ``temperature_K`` for
       ``anneal_steps`` (one batched NVT :func:`~common.md.runner.run_md` job in
       ``outdir/anneal``, resumable), each final frame relaxed again.

    Returns ``{"element", "starts": [{start, quench_energy_eV, anneal_energies_eV}],
    "lowest_energy_eV", "lowest_from", "spread_quench_eV" (max − min over the quenched
    starts), "spread_all_eV", "improved_by_anneal_eV"}`` and writes ``lowest.extxyz`` and
    ``search.json`` in ``outdir``. Not a global optimisation: more starts, replicas and
    longer anneals find lower minima (the spread says how far from converged it is).
    """
    import ase.io

    from common.fileio import atomic_write_atoms, atomic_write_json
    from common.md.runner import run_md

    if not (np.isfinite(temperature_K) and temperature_K > 0):
        raise ConfigError(f"temperature must be > 0 K (got {temperature_K})",
                          where="temperature_K", fix="e.g. 900")
    outdir = Path(outdir)
    settings = {"element": element, "temperature_K": float(temperature_K),
                "anneal_steps": anneal_steps, "replicas": replicas, "seed": seed,
                "timestep_fs": timestep_fs, "fmax_eV_A": fmax_eV_A,
                "host_sha": _structure_sha(host), "potential": type(potential).__name__}
    done = _finished(outdir / "search.json", settings)
    if done is not None:  # a finished search with the same settings: reuse it
        done["lowest"] = ase.io.read(outdir / "lowest.extxyz")
        return done
    starts = interstitial_structures(host, element)
    quenched = [relax(s, potential, fmax_eV_A) for s in starts]
    md_dir = outdir / "anneal"
    md = run_md(quenched, potential, md_dir, ensemble="nvt", temperature_K=temperature_K,
                friction_per_ps=5.0, timestep_fs=timestep_fs, steps=anneal_steps,
                replicas=replicas, seed=seed, traj_every=0,
                checkpoint_every=anneal_steps, restart=(md_dir / "run.json").exists(),
                progress=progress, potential_label=type(potential).__name__,
                on_blowup="stop_system")
    finals = ase.io.read(md["final_structures"], ":")
    failed = {int(k) for k in md["failed"]}
    annealed = [relax(f, potential, fmax_eV_A) if k not in failed else None
                for k, f in enumerate(finals)]
    rows, best = [], (np.inf, None, None)
    for s, (start, q) in enumerate(zip(starts, quenched, strict=True)):
        ann = annealed[s * replicas:(s + 1) * replicas]
        energies = [a.info["energy_eV"] for a in ann if a is not None]
        rows.append({"start": start.info["start"], "quench_energy_eV": q.info["energy_eV"],
                     "anneal_energies_eV": energies})
        for label, a in [("quench", q)] + [("anneal", a) for a in ann if a is not None]:
            if a.info["energy_eV"] < best[0]:
                best = (a.info["energy_eV"], f"{start.info['start']} ({label})", a)
    quench_e = [r["quench_energy_eV"] for r in rows]
    all_e = quench_e + [e for r in rows for e in r["anneal_energies_eV"]]
    result = {**settings, "starts": rows,
              "lowest_energy_eV": float(best[0]), "lowest_from": best[1],
              "spread_quench_eV": float(max(quench_e) - min(quench_e)),
              "spread_all_eV": float(max(all_e) - min(all_e)),
              "improved_by_anneal_eV": float(min(quench_e) - best[0])}
    lowest = best[2].copy()
    lowest.info.update({"defect": f"{element}_i", "start": best[1]})
    atomic_write_atoms(outdir / "lowest.extxyz", [lowest])
    atomic_write_json(outdir / "search.json", result)
    result["lowest"] = lowest
    return result


#: the largest force (eV/Å) a rattled starting structure may have
MAX_START_FORCE_EV_A = 30.0


def _rattled(atoms: Atoms, potential, sigma_A: float, rng) -> Atoms:
    """Return ``atoms`` with Gaussian displacements of ``sigma_A``.

    The displacements are halved until the largest force with ``potential`` is below
    MAX_START_FORCE_EV_A (at most 6 halvings).
    """
    from common.potential.protocol import evaluate

    noise = rng.normal(0.0, sigma_A, atoms.positions.shape)
    base = atoms.positions.copy()
    for _ in range(7):
        atoms.positions = base + noise
        f = evaluate(potential, [atoms])["forces"].detach().norm(dim=-1).max()
        if float(f) < MAX_START_FORCE_EV_A:
            break
        noise = 0.5 * noise
    return atoms


def _structure_sha(atoms: Atoms) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in (atoms.numbers, np.round(atoms.positions, 8), np.round(atoms.cell.array, 8)):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def _finished(path: Path, settings: dict) -> dict | None:
    """Return the saved result at ``path`` if it was made with ``settings``, else None."""
    import json

    if not path.exists():
        return None
    try:
        saved = json.loads(path.read_text())
    except ValueError:
        return None
    return saved if all(saved.get(k) == v for k, v in settings.items()) else None


# -- training configurations ------------------------------------------------------------------
def training_configurations(cells: Sequence[Atoms], potential, temperatures_K: Sequence[float],
                            outdir: str | Path, *, frames_per_cell: int = 4,
                            md_steps: int = 400, strain: float = 0.02,
                            rattle_A_at_300K: float = 0.05, timestep_fs: float = 1.0,
                            seed: int = 0, progress: bool = False) -> list[Atoms]:
    """Sample configurations across temperatures for training, unlabelled.

    Every cell at every temperature T: an isotropic strain drawn uniformly in ±``strain``,
    a rattle of ``rattle_A_at_300K``·√(T/300 K) (the thermal amplitude's scaling), then
    ``md_steps`` of Langevin MD at T with ``potential`` (the reference; one batched run in
    ``outdir``, resumable), ``frames_per_cell`` frames taken evenly from each trajectory
    after its first quarter. ``info`` holds ``temperature_K`` and ``source`` (the cell's
    ``defect`` or "perfect"). A rattle whose largest force exceeds
    :data:`MAX_START_FORCE_EV_A` (two atoms of a stiff N-N pair pushed together) is halved
    until it does not: independent Gaussian displacements are not a thermal state for such
    bonds.
    """
    import ase.io

    from common.md.runner import run_md

    temps = np.atleast_1d(np.asarray(temperatures_K, dtype=float))
    if temps.size == 0 or not (np.isfinite(temps) & (temps > 0)).all():
        raise ConfigError(f"temperatures must be > 0 K (got {temps.tolist()})",
                          where="temperatures_K", fix="e.g. 300,600,900,1200")
    if frames_per_cell < 1 or md_steps < 4 * frames_per_cell:
        raise ConfigError("need frames_per_cell >= 1 and md_steps >= 4 x frames_per_cell",
                          where="md_steps", fix="e.g. 400 steps, 4 frames")
    rng = np.random.default_rng(seed)
    starts, start_t = [], []
    for t in temps:
        for cell in cells:
            a = cell.copy()
            a.set_constraint()
            s = 1.0 + rng.uniform(-strain, strain)
            a.set_cell(a.cell.array * s, scale_atoms=True)
            a = _rattled(a, potential, rattle_A_at_300K * np.sqrt(t / 300.0), rng)
            a.info = {"temperature_K": float(t),
                      "source": str(cell.info.get("defect", "perfect"))}
            starts.append(a)
            start_t.append(t)
    every = max(1, (md_steps - md_steps // 4) // frames_per_cell)
    outdir = Path(outdir)
    md = run_md(starts, potential, outdir, ensemble="nvt", temperature_K=start_t,
                friction_per_ps=5.0, timestep_fs=timestep_fs, steps=md_steps, seed=seed,
                traj_every=every, checkpoint_every=md_steps, batch_size=len(starts),
                restart=(outdir / "run.json").exists(), progress=progress,
                potential_label=type(potential).__name__, on_blowup="stop_system")
    failed = {int(k) for k in md["failed"]}
    frames = []
    for k, path in enumerate(md["trajectories"]):
        if k in failed:
            continue
        traj = ase.io.read(path, ":")
        for f in traj[-frames_per_cell:]:
            f.calc = None
            f.info = dict(starts[k].info)
            f.arrays.pop("momenta", None)
            frames.append(f)
    return frames
