"""Relaxed formation energies of neutral point defects in GaN with any potential.

Between the Ga-rich and N-rich limits, with the trained MACE or the Tersoff reference. The
formation energy is

    E_f = E_def − E_bulk − Σ_s n_s μ_s

(n_s: atoms of element s added, negative for removed; E_def and E_bulk relaxed at the host's
fixed cell). The chemical potentials come from the same potential
(:func:`chemical_potentials`): its relaxed wurtzite GaN, its Ga metal and its N2 molecule, with
μ_Ga + μ_N = E(GaN) per formula unit:

* Ga-rich: μ_Ga = E(Ga metal), μ_N = E(GaN) − μ_Ga;
* N-rich: μ_N = E(N2)/2, μ_Ga = E(GaN) − μ_N;

in between, E_f is linear in Δμ_Ga = μ_Ga − E(Ga metal) ∈ [ΔH_f, 0]. The Ga metal is α-Ga by
default (the real phase; ``ga_phase="lowest"`` takes the lowest of α-Ga, bcc and fcc as the
potential has them -- Tersoff GaN puts bcc 8.6 meV/atom below α-Ga).

**Simplifications**: neutral defects only (no Fermi level, no charge states: a potential has
no electrons), no finite-size or elastic corrections beyond the supercell, fixed cell (the
dilute limit at the host's lattice), and each defect's structure is the relaxed one from its
starting site (interstitials: the lowest from :func:`semiconductors.systems.interstitial_search`
when asked for, otherwise from the largest void).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError
from semiconductors.systems import DEFECT_KINDS, as_calculator, make_defect, relax

GA_PHASES = ("alpha", "bcc", "fcc")
LIMITS = ("Ga-rich", "N-rich")


# -- chemical potentials --------------------------------------------------------------------
def alpha_ga() -> Atoms:
    """α-Ga (Cmce, 8 atoms; experimental cell and the Ga 8f site)."""
    from ase.spacegroup import crystal

    return crystal("Ga", [(0.0, 0.1549, 0.0810)], spacegroup=64,
                   cellpar=[4.5192, 7.6586, 4.5258, 90, 90, 90])


def ga_phase(name: str) -> Atoms:
    """Unrelaxed Ga metal: ``alpha`` (α-Ga), ``bcc`` (a 3.1 Å) or ``fcc`` (a 4.1 Å)."""
    from ase.build import bulk

    if name == "alpha":
        return alpha_ga()
    if name == "bcc":
        return bulk("Ga", "bcc", a=3.1, cubic=True)
    if name == "fcc":
        return bulk("Ga", "fcc", a=4.1, cubic=True)
    raise ConfigError(f"unknown Ga phase {name!r}", where="ga_phase",
                      fix=f"use one of {', '.join(GA_PHASES)} or 'lowest'")


def relaxed_crystal_energy(atoms: Atoms, calc, fmax_eV_A: float = 1e-4, steps: int = 400
                           ) -> float:
    """Energy per atom (eV) after relaxing cell and positions with the symmetry kept."""
    from ase.constraints import FixSymmetry
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = calc
    work.set_constraint(FixSymmetry(work))
    BFGS(FrechetCellFilter(work), logfile=None).run(fmax=fmax_eV_A, steps=steps)
    return float(work.get_potential_energy() / len(work))


def n2_energy(calc, bond_A: float = 1.1) -> tuple[float, float]:
    """Relaxed N2 molecule (no periodicity): (energy eV, bond length Å)."""
    from scipy.optimize import minimize_scalar

    def energy(r):
        m = Atoms("N2", positions=[[0, 0, 0], [0, 0, r]], cell=[12, 12, 12], pbc=False)
        m.calc = calc
        return float(m.get_potential_energy())

    res = minimize_scalar(energy, bracket=(bond_A - 0.05, bond_A + 0.05), tol=1e-8)
    return float(res.fun), float(res.x)


def read_chemical_potentials(path: str | Path) -> dict:
    """Read a ``chemical_potentials.json`` written before (e.g. by ``mlp-semiconductors defects``).

    Raise a ConfigError naming the file when it is not one.
    """
    import json

    try:
        mu = json.loads(Path(path).read_text())
        ok = all(isinstance(mu["limits"][lim][s], float) for lim in LIMITS
                 for s in ("Ga", "N")) and isinstance(mu["formation_enthalpy_eV"], float)
    except (OSError, ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise ConfigError("not a chemical-potentials JSON file", where=str(path),
                          fix="give the chemical_potentials.json of a `defects` run with the "
                              "same potential, or leave the option out")
    return mu


def chemical_potentials(potential, *, ga_phase_name: str = "alpha",
                        gan_lattice: dict | None = None) -> dict:
    """Return μ_Ga and μ_N at the Ga-rich and N-rich limits from ``potential``, eV per atom.

    ``potential`` is a BatchedPotential or an ASE calculator.

    Returns ``{"gan": {a_A, c_A, u, energy_eV_per_formula}, "ga_phases_eV_per_atom"
    (the chosen phase; all three for "lowest"), "ga_phase", "mu_Ga_metal_eV", "n2":
    {energy_eV, bond_A}, "formation_enthalpy_eV" (ΔH_f per formula unit), "limits":
    {"Ga-rich": {"Ga", "N"}, "N-rich": {...}}}``. ``gan_lattice``: a result of
    :func:`semiconductors.systems.relaxed_lattice` already computed with this potential.
    """
    from semiconductors.systems import relaxed_lattice

    if ga_phase_name not in (*GA_PHASES, "lowest"):
        raise ConfigError(f"unknown Ga phase {ga_phase_name!r}", where="ga_phase",
                          fix=f"use one of {', '.join(GA_PHASES)} or 'lowest'")
    calc = as_calculator(potential)
    gan = gan_lattice or relaxed_lattice(calc)
    names = GA_PHASES if ga_phase_name == "lowest" else (ga_phase_name,)
    phases = {p: relaxed_crystal_energy(ga_phase(p), calc) for p in names}
    chosen = min(phases, key=phases.get)
    e_n2, bond = n2_energy(calc)
    mu_ga, mu_n = phases[chosen], e_n2 / 2.0
    e_gan = gan["energy_eV_per_formula"]
    return {"gan": gan, "ga_phases_eV_per_atom": phases, "ga_phase": chosen,
            "mu_Ga_metal_eV": mu_ga, "n2": {"energy_eV": e_n2, "bond_A": bond},
            "formation_enthalpy_eV": e_gan - mu_ga - mu_n,
            "limits": {"Ga-rich": {"Ga": mu_ga, "N": e_gan - mu_ga},
                       "N-rich": {"Ga": e_gan - mu_n, "N": mu_n}}}


# -- formation energies ---------------------------------------------------------------------
def composition_change(defective: Atoms, host: Atoms) -> dict[str, int]:
    """Atoms of each element added to the host (negative: removed)."""
    cd, ch = Counter(defective.get_chemical_symbols()), Counter(host.get_chemical_symbols())
    return {s: cd[s] - ch[s] for s in ("Ga", "N")}


def formation_energy(e_defect_eV: float, e_host_eV: float, dn: dict[str, int],
                     mu_eV: dict[str, float]) -> float:
    """E_f = E_def − E_bulk − Σ_s n_s μ_s, eV."""
    return float(e_defect_eV - e_host_eV - sum(n * mu_eV[s] for s, n in dn.items() if n))


def formation_energies(host: Atoms, potential, mu: dict, *,
                       kinds: Sequence[str] = ("V_Ga", "V_N", "Ga_N", "N_Ga", "Ga_i", "N_i"),
                       interstitials: dict[str, Atoms] | None = None,
                       fmax_eV_A: float = 0.01, max_steps: int = 1000,
                       outdir: str | Path | None = None) -> dict:
    """Relaxed formation energy of each defect at the Ga-rich and N-rich limits.

    Parameters
    ----------
    host : the perfect wurtzite supercell (at the potential's lattice)
    potential : BatchedPotential or ASE calculator
    mu : the result of :func:`chemical_potentials` for the same potential
    kinds : defects (:data:`semiconductors.systems.DEFECT_KINDS`)
    interstitials : {"Ga_i": atoms, ...}: starting structures to use instead of the largest
        void (e.g. the lowest of an interstitial search); relaxed again here
    fmax_eV_A, max_steps : relaxation stops at this largest force or after this many steps
        (each row says whether it ``converged``)
    outdir : when given, ``formation_energies.json``/``.csv``, the relaxed structures
        (``relaxed.extxyz``) and ``formation_energies.png`` are written there

    Returns
    -------
    dict
        ``{"host_atoms", "host_energy_eV", "chemical_potentials": mu, "defects": [{kind,
        n_atoms, dn, energy_eV, relax_steps, converged, E_f_Ga_rich_eV, E_f_N_rich_eV}]}``.
    """
    bad = [k for k in kinds if k not in DEFECT_KINDS]
    if bad:
        raise ConfigError(f"unknown defect {bad[0]!r}", where="kinds",
                          fix=f"use some of {', '.join(DEFECT_KINDS)}")
    host_relaxed = relax(host, potential, fmax_eV_A, max_steps)
    e_host = host_relaxed.info["energy_eV"]
    rows, relaxed = [], [host_relaxed]
    for kind in kinds:
        start = (interstitials or {}).get(kind)
        start = start.copy() if start is not None else make_defect(host, kind)
        d = relax(start, potential, fmax_eV_A, max_steps)
        d.info["defect"] = kind
        relaxed.append(d)
        dn = composition_change(d, host)
        rows.append({"kind": kind, "n_atoms": len(d), "dn": dn,
                     "energy_eV": d.info["energy_eV"], "relax_steps": d.info["relax_steps"],
                     "converged": d.info["converged"],
                     **{f"E_f_{lim.replace('-', '_')}_eV": formation_energy(
                         d.info["energy_eV"], e_host, dn, mu["limits"][lim])
                        for lim in LIMITS}})
    result = {"host_atoms": len(host), "host_energy_eV": e_host, "chemical_potentials": mu,
              "defects": rows}
    if outdir is not None:
        write_outputs(result, relaxed, outdir)
    return result


def formation_vs_mu(row: dict, mu: dict, n: int = 21) -> tuple[np.ndarray, np.ndarray]:
    """Return (Δμ_Ga, E_f), eV, of one defect from ΔH_f (N-rich) to 0 (Ga-rich).

    E_f against Δμ_Ga = μ_Ga − μ_Ga(metal).
    """
    dh = mu["formation_enthalpy_eV"]
    x = np.linspace(dh, 0.0, n)
    e_ga = row["E_f_Ga_rich_eV"]
    # moving from Ga-rich by Δμ_Ga: μ_Ga += Δμ_Ga, μ_N −= Δμ_Ga
    slope = -(row["dn"]["Ga"] - row["dn"]["N"])
    return x, e_ga + slope * x


def table_rows(result: dict) -> list[dict]:
    """Flat rows (kind, atoms, E_f at both limits) for CSV or a report."""
    return [{"defect": r["kind"], "n_atoms": r["n_atoms"],
             "E_f_Ga_rich_eV": round(r["E_f_Ga_rich_eV"], 4),
             "E_f_N_rich_eV": round(r["E_f_N_rich_eV"], 4)} for r in result["defects"]]


def write_outputs(result: dict, relaxed: list[Atoms], outdir: str | Path,
                  label: str = "") -> None:
    """``formation_energies.json``, ``.csv``, ``relaxed.extxyz`` and the plot in ``outdir``."""
    import csv
    import io

    from common.fileio import atomic_write_atoms, atomic_write_json, atomic_write_text

    outdir = Path(outdir)
    atomic_write_json(outdir / "formation_energies.json", result)
    buf = io.StringIO()
    rows = table_rows(result)
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["defect"])
    w.writeheader()
    w.writerows(rows)
    atomic_write_text(outdir / "formation_energies.csv", buf.getvalue())
    atomic_write_atoms(outdir / "relaxed.extxyz", relaxed)
    plot_formation({label or "potential": result}, outdir / "formation_energies.png")


def plot_formation(results: dict[str, dict], path: str | Path) -> None:
    """E_f against Δμ_Ga for every defect.

    One line style per result (e.g. MACE solid, Tersoff dashed), one colour per defect.
    """
    from common.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.5, 4))
    styles = ["-", "--", ":", "-."]
    colours = {}
    for k, (name, res) in enumerate(results.items()):
        for row in res["defects"]:
            c = colours.setdefault(row["kind"], f"C{len(colours)}")
            x, y = formation_vs_mu(row, res["chemical_potentials"])
            ax.plot(x, y, styles[k % len(styles)], color=c,
                    label=f"{row['kind']} ({name})" if len(results) > 1 else row["kind"])
    ax.set_xlabel("Δμ_Ga (eV): N-rich ← → Ga-rich")
    ax.set_ylabel("formation energy (eV)")
    ax.legend(fontsize=7, ncol=2)
    save_figure(fig, path)
