"""Tiny deposition simulations of GaN on (0001) and the defects they leave.

Over a grid of substrate temperature and Ga/N flux ratio -- the seed's growth window at a toy scale.

* :func:`deposit` -- Ga and N atoms dropped one at a time (Ga with probability r/(1 + r) for
  a flux ratio r = Ga/N) at random lateral positions above the surface of a
  :func:`semiconductors.systems.slab_0001` substrate, aimed at it with a given kinetic
  energy, each followed by ``steps_per_atom`` of Langevin MD of the whole slab at the
  substrate temperature (bottom bilayer fixed) through :func:`common.md.runner.run_md`.
  Atoms that leave the surface (N2 desorbs readily) are removed between cycles.
* :func:`count_defects` -- site-based and coordination analysis of the film: the substrate's
  wurtzite lattice is continued upward, every atom assigned to the nearest ideal site within
  ``site_tolerance_A``; empty sites below the growth front are vacancies, sites holding the
  wrong element antisites, atoms on no site interstitials/disordered; bonds between atoms of
  the same element (wrong bonds; N2 molecules counted apart) and under-coordinated atoms
  below the top layer are counted too. Densities per nm² of surface.
* :func:`growth_map` -- the (T, Ga/N) grid through :func:`common.sweep.run_tasks` (one task
  per point, each written to disk as it finishes, a rerun skips finished points), the defect
  density map and its minimum (the "optimum").

**Simplifications** (say so wherever results are shown): a tiny surface cell and a fraction of
a monolayer to a few bilayers of growth in picoseconds, not the seconds of real MOCVD/MBE
growth; the whole slab thermostatted (not only the substrate); no surface chemistry of the
precursors (TMGa, NH3) -- bare Ga and N atoms; with Tersoff GaN (nearest-neighbour only)
wurtzite and zincblende stacking have the same energy, so stacking faults are invisible to
it and to a model trained on it, and such a map cannot locate the seed's growth window.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError

#: a deposited atom closer than this to the slab's top, Å, is placed higher
DROP_HEIGHT_A = 4.0
#: atoms higher than this above the film's top after a cycle have desorbed, Å
DESORBED_A = 6.0


def check_growth_conditions(temperature_K: float, flux_ratio: float) -> None:
    """Temperature > 0 K and a Ga/N flux ratio > 0 (finite), else a ConfigError."""
    if not (np.isfinite(temperature_K) and temperature_K > 0):
        raise ConfigError(f"temperature must be > 0 K (got {temperature_K:g})",
                          where="temperature_K", fix="give the substrate temperature in K")
    if not (np.isfinite(flux_ratio) and flux_ratio > 0):
        raise ConfigError(f"the Ga/N flux ratio must be > 0 (got {flux_ratio:g})",
                          where="flux_ratio", fix="e.g. 0.8, 1.0, 1.2")


def deposit(substrate: Atoms, potential, temperature_K: float, flux_ratio: float,
            outdir: str | Path, *, n_atoms: int = 18, steps_per_atom: int = 300,
            kinetic_energy_eV: float = 0.5, timestep_fs: float = 1.0, seed: int = 0,
            friction_per_ps: float = 5.0) -> Atoms:
    """Grow on ``substrate`` by depositing ``n_atoms`` atoms one by one (module docstring).

    ``substrate`` is a (0001) slab, pbc in x and y, fixed bottom. Returns the final structure
    (also ``outdir/grown.extxyz``). Each cycle's MD is a ``run_md`` run in ``outdir/cycle_k`` (a
    rerun resumes from the last finished cycle).
    """
    import ase.io

    from common.fileio import atomic_write_atoms
    from common.md.runner import run_md

    check_growth_conditions(temperature_K, flux_ratio)
    if n_atoms < 1 or steps_per_atom < 1:
        raise ConfigError("need n_atoms >= 1 and steps_per_atom >= 1", where="n_atoms",
                          fix="e.g. 18 atoms, 300 steps each")
    outdir = Path(outdir)
    rng = np.random.default_rng(seed)
    atoms = substrate.copy()
    p_ga = flux_ratio / (1.0 + flux_ratio)
    species = ["Ga" if x < p_ga else "N" for x in rng.random(n_atoms)]
    xy = rng.random((n_atoms, 2))
    for k, el in enumerate(species):
        folder = outdir / f"cycle_{k:03d}"
        done = folder / "final.extxyz"
        if done.exists() and (folder / "summary.json").exists():
            atoms = _with_constraint(ase.io.read(done), substrate)
            continue
        top = atoms.positions[:, 2].max()
        pos = xy[k, 0] * atoms.cell[0] + xy[k, 1] * atoms.cell[1]
        pos[2] = top + DROP_HEIGHT_A
        atoms.append(el)
        atoms.positions[-1] = pos
        mass = atoms[-1].mass
        momenta = atoms.get_momenta()
        momenta[-1] = [0.0, 0.0, -np.sqrt(2.0 * mass * kinetic_energy_eV)]
        atoms.set_momenta(momenta)
        md = run_md([atoms], potential, folder, ensemble="nvt", temperature_K=temperature_K,
                    friction_per_ps=friction_per_ps, timestep_fs=timestep_fs,
                    steps=steps_per_atom, seed=seed + k, traj_every=0, batch_size=1,
                    progress=False, potential_label=type(potential).__name__)
        atoms = _with_constraint(ase.io.read(md["final_structures"]), substrate)
        atoms = _remove_desorbed(atoms, len(substrate))
    grown = atoms.copy()
    grown.info.update({"temperature_K": float(temperature_K), "flux_ratio": float(flux_ratio),
                       "deposited": n_atoms, "substrate_atoms": len(substrate)})
    atomic_write_atoms(outdir / "grown.extxyz", [grown])
    return grown


def _with_constraint(atoms: Atoms, substrate: Atoms) -> Atoms:
    """Re-apply the substrate's fixed atoms and drop MD bookkeeping.

    The first len(substrate) atoms keep their order.
    """
    atoms.set_constraint([c.copy() for c in substrate.constraints])
    atoms.info = {}
    return atoms


def _remove_desorbed(atoms: Atoms, n_substrate: int) -> Atoms:
    """Drop deposited atoms more than DESORBED_A above the highest atom bonded to the film."""
    z = atoms.positions[:, 2]
    film_top = np.sort(z)[-max(1, len(z) // 10)]  # robust against a few flying atoms
    gone = [i for i in range(n_substrate, len(atoms)) if z[i] > film_top + DESORBED_A]
    if gone:
        del atoms[gone]
    return atoms


# -- defect analysis ------------------------------------------------------------------------
#: a bond between atoms of the same element shorter than this is a wrong bond, Å (GaN's
#: second neighbours are at 3.18 Å; Ga-Ga in Ga metal 2.5-2.8 Å, N-N in N2 1.1 Å)
WRONG_BOND_A = {"Ga": 2.8, "N": 1.8}
GA_N_BOND_A = 2.4


def _bilayer_index(slab: Atoms) -> tuple[np.ndarray, np.ndarray]:
    """Return the bilayer of each atom and the z of each bilayer's Ga plane.

    A Ga plane and the N plane about c/8 above it form a bilayer.
    """
    z = slab.positions[:, 2]
    ga = np.sort(z[slab.numbers == 31])
    planes = [ga[0]]
    for v in ga[1:]:
        if v - planes[-1] > 1.0:
            planes.append(v)
    planes = np.array(planes)
    return np.clip(np.searchsorted(planes, z + 0.3, side="right") - 1, 0, None), planes


def ideal_sites(substrate: Atoms, n_bilayers_above: int) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Return the substrate's wurtzite sites continued upward by ``n_bilayers_above`` bilayers.

    ABAB stacking: bilayer top + j is bilayer top − 1 (j odd) or top (j even) shifted by
    c·⌈j/2⌉. Returns positions (M, 3), atomic numbers (M,), bilayer index (M,).
    """
    layers, planes = _bilayer_index(substrate)
    top = int(layers.max())
    if top < 1:
        raise ConfigError("the substrate needs at least 2 bilayers to continue its lattice",
                          where="substrate", fix="build the slab with bilayers >= 2")
    c = 2.0 * float(planes[top] - planes[top - 1])
    pos, num, lay = [substrate.positions], [substrate.numbers], [layers]
    for j in range(1, n_bilayers_above + 1):
        src = np.nonzero(layers == (top - 1 if j % 2 else top))[0]
        p = substrate.positions[src].copy()
        p[:, 2] += c * ((j + 1) // 2)
        pos.append(p)
        num.append(substrate.numbers[src])
        lay.append(np.full(len(src), top + j))
    return np.concatenate(pos), np.concatenate(num), np.concatenate(lay)


def count_defects(grown: Atoms, substrate: Atoms, site_tolerance_A: float = 0.8) -> dict:
    """Count the defects of a grown film by site occupation and coordination.

    ``substrate`` is the slab it grew on (ideal positions); see the module docstring.

    Returns counts and densities per nm²: ``vacancies`` (empty sites below the growth front,
    above the fixed bottom bilayer), ``antisites`` (a site holding the other element),
    ``off_site`` (atoms on no site, or a second atom on a site: interstitials and disordered
    or wrongly stacked atoms), ``wrong_bonds`` (Ga-Ga < 2.8 Å, N-N < 1.8 Å, N2 molecules
    excluded), ``n2_molecules``, ``under_coordinated`` (atoms below the growth front with < 4
    neighbours), ``total`` (vacancies + antisites + off-site + wrong bonds), the growth front
    (the highest bilayer at least half occupied) and the film's bilayers.
    """
    from ase.geometry import find_mic
    from ase.neighborlist import neighbor_list

    layers0, planes = _bilayer_index(substrate)
    top0 = int(layers0.max())
    half_c = float(planes[top0] - planes[top0 - 1])
    above = int(np.ceil(max(0.0, grown.positions[:, 2].max() - planes[top0]) / half_c)) + 1
    sites, site_z, site_layer = ideal_sites(substrate, above)
    cell = grown.cell.array.copy()
    d, _ = find_mic((grown.positions[:, None] - sites[None]).reshape(-1, 3), cell,
                    pbc=(True, True, False))
    dist = np.linalg.norm(d, axis=1).reshape(len(grown), len(sites))
    nearest = dist.argmin(1)
    on_site = dist[np.arange(len(grown)), nearest] < site_tolerance_A
    occupant = np.full(len(sites), -1)
    off_site = []
    for i in np.argsort(dist[np.arange(len(grown)), nearest]):  # closest claim a site first
        s = nearest[i]
        if on_site[i] and occupant[s] < 0:
            occupant[s] = i
        else:
            off_site.append(int(i))
    n_layers = int(site_layer.max()) + 1
    occupancy = np.array([np.mean(occupant[site_layer == k] >= 0) for k in range(n_layers)])
    front = int(max(k for k in range(n_layers) if occupancy[k] >= 0.5))
    inside = (site_layer >= 1) & (site_layer < front)
    vacancies = int(np.sum(inside & (occupant < 0)))
    filled = occupant >= 0
    antisites = int(np.sum(filled & (grown.numbers[np.maximum(occupant, 0)] != site_z)))
    # bonds
    syms = np.array(grown.get_chemical_symbols())
    i, j, r = neighbor_list("ijd", grown, max(*WRONG_BOND_A.values(), GA_N_BOND_A))
    same = syms[i] == syms[j]
    cut = np.where(same, np.vectorize(WRONG_BOND_A.get)(syms[i]), GA_N_BOND_A)
    bonded = r < cut
    i, j, same = i[bonded], j[bonded], same[bonded]
    n_same = np.bincount(i[same], minlength=len(grown))
    n_other = np.bincount(i[~same], minlength=len(grown))
    n2 = [a for a in range(len(grown)) if syms[a] == "N" and n_same[a] == 1 and n_other[a] == 0]
    n2_set = set(n2)
    wrong = int(sum(1 for a, b, s in zip(i, j, same, strict=True)
                    if s and a < b and not (a in n2_set and b in n2_set)))
    atom_layer = np.where(on_site, site_layer[nearest], -1)
    below_front = (atom_layer >= 1) & (atom_layer < front)
    under = int(np.sum(below_front & ((n_same + n_other) < 4)))
    area_nm2 = float(np.linalg.norm(np.cross(cell[0], cell[1]))) / 100.0
    counts = {"vacancies": vacancies, "antisites": antisites, "off_site": len(off_site),
              "wrong_bonds": wrong, "n2_molecules": len(n2) // 2,
              "under_coordinated": under}
    counts["total"] = vacancies + antisites + len(off_site) + wrong
    return {**counts, "per_nm2": {k: v / area_nm2 for k, v in counts.items()},
            "area_nm2": area_nm2, "growth_front_bilayer": front,
            "film_bilayers": front - top0, "off_site_atoms": off_site}


# -- the (T, Ga/N) map ------------------------------------------------------------------------
def _grow_and_count(substrate: Atoms, potential_spec: tuple, temperature_K: float,
                    flux_ratio: float, outdir: str, seed: int, settings: dict) -> dict:
    """One grid point (a common.sweep task): deposit, then count."""
    import torch

    torch.set_num_threads(1)
    pot = _make(potential_spec)
    grown = deposit(substrate, pot, temperature_K, flux_ratio, outdir, seed=seed, **settings)
    res = count_defects(grown, substrate)
    res.update({"temperature_K": float(temperature_K), "flux_ratio": float(flux_ratio),
                "n_atoms": len(grown), "composition": grown.get_chemical_formula()})
    return res


def _make(spec: tuple):
    """Make a potential from a picklable spec.

    ("tersoff", backend) or ("model", folder).
    """
    kind, arg = spec
    if kind == "tersoff":
        from semiconductors.reference import TersoffBatched

        return TersoffBatched(backend=arg)
    from common.potential.registry import load_saved

    return load_saved(Path(arg))


def growth_map(substrate: Atoms, temperatures_K: Sequence[float], flux_ratios: Sequence[float],
               outdir: str | Path, *, potential: str = "tersoff", seed: int = 0,
               cluster=None, progress: bool = False, **settings) -> dict:
    """Deposit at every (temperature, Ga/N ratio) and count the defects.

    One :func:`common.sweep.run_tasks` task per point, results in ``outdir/points/`` (a rerun
    skips finished points). ``potential``: "tersoff" (the reference, LAMMPS) or a saved model
    folder. ``settings`` go to :func:`deposit` (n_atoms, steps_per_atom, kinetic_energy_eV,
    timestep_fs). Writes ``growth_map.json`` and ``growth_map.png``; returns ``{"points": [...],
    "optimum": the point with the fewest defects per nm², "settings"}``.
    """
    from common.fileio import atomic_write_json
    from common.sweep import JsonDirStore, run_tasks

    temps = [float(t) for t in temperatures_K]
    ratios = [float(r) for r in flux_ratios]
    if not temps or not ratios:
        raise ConfigError("the grid needs at least one temperature and one flux ratio",
                          where="temperatures_K", fix="e.g. 900,1100 and 0.8,1.0,1.2")
    for t in temps:
        for r in ratios:
            check_growth_conditions(t, r)
    spec = ("tersoff", "lammps") if potential == "tersoff" else ("model", str(potential))
    outdir = Path(outdir)
    tasks = {}
    for t in temps:
        for r in ratios:
            key = f"T{t:g}_r{r:g}"
            tasks[key] = (_grow_and_count, {"substrate": substrate, "potential_spec": spec,
                                            "temperature_K": t, "flux_ratio": r,
                                            "outdir": str(outdir / "runs" / key), "seed": seed,
                                            "settings": settings})
    store = JsonDirStore(outdir / "points")
    report = run_tasks(tasks, store, cluster=cluster, progress=progress,
                       description="growth conditions")
    if not report.ok:
        from common.errors import SimulationError

        first = next(iter(report.failures.items()))
        raise SimulationError(f"a growth run failed: {first[1]}", where=str(first[0]),
                              fix="see the message; rerun to retry the failed points")
    points = sorted(store.results().values(), key=lambda p: (p["temperature_K"],
                                                             p["flux_ratio"]))
    best = min(points, key=lambda p: (p["per_nm2"]["total"], p["per_nm2"]["under_coordinated"]))
    result = {"points": points, "optimum": {k: best[k] for k in ("temperature_K", "flux_ratio")}
              | {"defects_per_nm2": best["per_nm2"]["total"]},
              "settings": {"potential": potential, "seed": seed, **settings}}
    atomic_write_json(outdir / "growth_map.json", result)
    plot_growth_map(result, outdir / "growth_map.png")
    return result


def plot_growth_map(result: dict, path: str | Path) -> None:
    """Defects per nm² over (T, Ga/N), the optimum marked."""
    from common.plots import pyplot, save_figure

    plt = pyplot()

    pts = result["points"]
    temps = sorted({p["temperature_K"] for p in pts})
    ratios = sorted({p["flux_ratio"] for p in pts})
    grid = np.full((len(temps), len(ratios)), np.nan)
    for p in pts:
        grid[temps.index(p["temperature_K"]), ratios.index(p["flux_ratio"])] = \
            p["per_nm2"]["total"]
    fig, ax = plt.subplots(figsize=(5, 4))
    im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(ratios)), [f"{r:g}" for r in ratios])
    ax.set_yticks(range(len(temps)), [f"{t:g}" for t in temps])
    best = result["optimum"]
    ax.plot(ratios.index(best["flux_ratio"]), temps.index(best["temperature_K"]), "r*",
            ms=14, label="fewest defects")
    ax.set_xlabel("Ga/N flux ratio")
    ax.set_ylabel("substrate temperature (K)")
    fig.colorbar(im, label="defects per nm²")
    ax.legend(fontsize=7)
    save_figure(fig, path)
