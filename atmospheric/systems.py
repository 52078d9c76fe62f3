"""OH + VOC systems.

Molecules from SMILES (RDKit), reaction channels, reactant complexes and the training frames along
approach, addition and abstraction paths.

* :func:`molecule_from_smiles` -- RDKit embedding (ETKDG) + MMFF94 relaxation, as ASE Atoms
  (non-periodic); the radical OH is ``[OH]``.
* :data:`VOCS` -- propene, isoprene, toluene with the atmospheric carbon numbering (isoprene
  C1=C2(C5)-C3=C4; propene C1=C2-C3; toluene C1 the ring carbon bearing the methyl, C7 the
  methyl).
* :func:`channels` -- one channel per sp2/aromatic carbon (``add_C<k>``: O-C < 1.6 Å), one
  for the H atoms on sp3 carbons (``abstraction``: O-H < 1.1 Å; the allylic H of propene and
  isoprene, the methyl H of toluene) and one for the H atoms on sp2 carbons
  (``abstraction_vinylic``, or ``abstraction_aryl`` on a ring: propene's =CH2 and =CH- H);
  as QCT criteria (``NAME=distance:I:J<R``, OH's atoms first: O is atom 0).
* :func:`complex_at` -- OH placed at a distance from a channel's site: above the sp2 plane for
  an addition, along the C-H axis for an abstraction (the H moved part way to O late on the
  path), the OH hydrogen pointing away.
* :func:`thermal_states` -- thermal internal states of a reactant by Langevin MD on the labeller
  (any ASE calculator; GFN2-xTB here), frames every ``every`` steps.
* :func:`training_frames` -- supersystem frames: thermal states of both reactants put together
  at 5-9 Å (random orientations), and frames along each channel's path from 3.6 Å to the
  product's bond length, rattled; labelled with :func:`label_frames` through
  :mod:`common.labels` (cached).
* :func:`reactive_frames` -- frames from short reference (GFN2-xTB) NVE trajectories of OH
  thrown at the VOC from 2.5-4 Å, at a channel's site or from a random direction, with thermal
  internal states and a thermal approach speed: the regions QCT trajectories visit on the way
  to each channel's product (the issue's "frames from reactive trajectories").

Labels (issue 12's measurements): GFN2-xTB via tblite, doublet (``multiplicity=2``), electronic
temperature 1000 K (the default 300 K leaves a third of OH...VOC geometries at 3-4 Å
unconverged). GFN2 moves ~0.15 e from the VOC to OH even at 40 Å, so reactant energies are
referenced to the supersystem at large separation, never to isolated fragments: every training
frame holds both molecules.

Simplifications, named: path frames are rigid scans of the O-C (O-H) distance with rattles,
not relaxed IRC paths; reactive-trajectory frames are short direct-dynamics runs on the
labeller, not an active-learning loop on the trained model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from common.errors import ConfigError, DataError

__all__ = ["VOCS", "Channel", "channels", "complex_at", "label_frames", "labeller_spec",
           "molecule_from_smiles", "oh_radical", "reactive_frames", "thermal_states",
           "training_frames", "voc"]

#: name -> (SMILES, {RDKit heavy-atom index: carbon label})
VOCS: dict[str, tuple[str, dict[int, str]]] = {
    "propene": ("C=CC", {0: "C1", 1: "C2", 2: "C3"}),
    "isoprene": ("C=C(C)C=C", {0: "C1", 1: "C2", 2: "C5", 3: "C3", 4: "C4"}),
    "toluene": ("Cc1ccccc1", {0: "C7", 1: "C1", 2: "C2", 3: "C3", 4: "C4", 5: "C5", 6: "C6"}),
}
#: the labeller settings the issue measured: GFN2, doublet, electronic temperature 1000 K
LABELLER = {"name": "xtb", "method": "GFN2-xTB", "multiplicity": 2,
            "electronic_temperature_K": 1000.0}
OH_BOND_A = 0.97
BOX_A = 30.0  # training frames sit in a periodic box this large (nequip wants a cell)


def molecule_from_smiles(smiles: str, seed: int = 0) -> Atoms:
    """Build an ASE molecule from SMILES.

    Hydrogens added, ETKDG embedding, MMFF94 relaxation (skipped where MMFF has no parameters, e.g.
    a radical); ``info["smiles"]`` set.
    """
    from rdkit import Chem, RDLogger
    from rdkit.Chem import AllChem

    RDLogger.DisableLog("rdApp.*")
    mol = Chem.MolFromSmiles(smiles)
    if mol is None:
        raise ConfigError(f"cannot read SMILES {smiles!r}", where="smiles",
                          fix="give a valid SMILES, e.g. C=CC for propene")
    mol = Chem.AddHs(mol)
    if AllChem.EmbedMolecule(mol, randomSeed=int(seed)) != 0:
        raise DataError(f"RDKit could not embed {smiles!r} in 3D", where="smiles",
                        fix="check the SMILES or try another seed")
    if len(mol.GetAtoms()) > 2 and AllChem.MMFFHasAllMoleculeParams(mol):
        AllChem.MMFFOptimizeMolecule(mol)
    pos = mol.GetConformer().GetPositions()
    at = Atoms([a.GetSymbol() for a in mol.GetAtoms()], positions=pos, pbc=False)
    at.positions -= at.get_center_of_mass()
    at.info["smiles"] = smiles
    at.info["radical_electrons"] = sum(a.GetNumRadicalElectrons() for a in mol.GetAtoms())
    return at


def oh_radical() -> Atoms:
    """OH at its GFN2 bond length (0.97 Å), O first."""
    at = Atoms("OH", positions=[[0.0, 0.0, 0.0], [0.0, 0.0, OH_BOND_A]], pbc=False)
    at.info.update(smiles="[OH]", radical_electrons=1)
    return at


def voc(name_or_smiles: str, seed: int = 0) -> tuple[Atoms, dict[int, str]]:
    """Build a VOC by name (:data:`VOCS`) or SMILES, and its carbon labels {atom index: "C<k>"}.

    The labels follow SMILES order (C1, C2, ...) for a SMILES.
    """
    smiles, labels = VOCS.get(name_or_smiles, (name_or_smiles, None))
    at = molecule_from_smiles(smiles, seed)
    if labels is None:
        carbons = [i for i, s in enumerate(at.get_chemical_symbols()) if s == "C"]
        labels = {i: f"C{k + 1}" for k, i in enumerate(carbons)}
    at.info["name"] = name_or_smiles
    return at, dict(labels)


@dataclass(frozen=True)
class Channel:
    """One reaction channel.

    It holds its name, kind ("addition"/"abstraction"), the VOC atoms it acts on (a carbon, or the H
    atoms), and its QCT criteria (OH's atoms first).
    """

    name: str
    kind: str
    sites: tuple[int, ...]
    carbon: int
    criteria: tuple[str, ...]


def _bonded(at: Atoms) -> list[set[int]]:
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j = neighbor_list("ij", at, natural_cutoffs(at, mult=1.1))
    out = [set() for _ in range(len(at))]
    for a, b in zip(i, j, strict=True):
        out[a].add(int(b))
    return out


def _in_ring(nb: list[set[int]], atom: int) -> bool:
    """Tell whether ``atom`` lies on a cycle of the bond graph.

    A cycle is a path back to it avoiding the bond it left by.
    """
    for start in nb[atom]:
        seen, stack = {atom, start}, [start]
        while stack:
            k = stack.pop()
            for j in nb[k]:
                if j == atom and k != start:
                    return True
                if j not in seen:
                    seen.add(j)
                    stack.append(j)
    return False


def channels(mol: Atoms, labels: dict[int, str], n_oh: int = 2,
             add_A: float = 1.6, abstract_A: float = 1.1) -> list[Channel]:
    """List the OH + VOC reaction channels of ``mol``.

    Addition at every carbon with fewer than four neighbours (sp2/aromatic), one abstraction
    channel for the H atoms on sp3 carbons (``abstraction``: allylic in propene and isoprene,
    methyl in toluene) and one for the H atoms on sp2 carbons (``abstraction_vinylic``;
    ``abstraction_aryl`` where those carbons are on a ring); criteria count OH's ``n_oh`` atoms
    first (O is atom 0).
    """
    sym = mol.get_chemical_symbols()
    nb = _bonded(mol)
    out = []
    for c in sorted(labels, key=lambda k: int(labels[k][1:])):
        if sym[c] == "C" and len(nb[c]) < 4:
            out.append(Channel(f"add_{labels[c]}", "addition", (c,), c,
                               (f"add_{labels[c]}=distance:0:{c + n_oh}<{add_A:g}",)))
    order = sorted(labels, key=lambda k: int(labels[k][1:]))
    sp3 = [(h, c) for c in order if sym[c] == "C" and len(nb[c]) == 4
           for h in sorted(nb[c]) if sym[h] == "H"]
    sp2 = [(h, c) for c in order if sym[c] == "C" and len(nb[c]) < 4
           for h in sorted(nb[c]) if sym[h] == "H"]
    ring = any(_in_ring(nb, c) for _, c in sp2)
    for name, hs in (("abstraction", sp3),
                     ("abstraction_aryl" if ring else "abstraction_vinylic", sp2)):
        if hs:
            out.append(Channel(name, "abstraction", tuple(h for h, _ in hs), hs[0][1],
                               tuple(f"{name}=distance:0:{h + n_oh}<{abstract_A:g}"
                                     for h, _ in hs)))
    return out


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def _away(rng: np.random.Generator, axis: np.ndarray) -> np.ndarray:
    """Draw a random unit vector at more than 90 degrees from ``-axis`` (pointing away)."""
    while True:
        u = _unit(rng.standard_normal(3))
        if u @ axis > 0.2:
            return u


def complex_at(oh: Atoms, mol: Atoms, channel: Channel, distance_A: float,
               rng: np.random.Generator, site: int | None = None,
               transfer: float = 0.0) -> Atoms:
    """OH + VOC (OH's atoms first) with O ``distance_A`` from the channel's site.

    Above the plane of an sp2 carbon (a random side), or on the C-H axis beyond an H (``transfer``
    in [0, 1] moves that H from its C-H bond length to O-H 0.97 Å); OH's H points away.
    """
    pos = mol.positions.copy()
    nb = _bonded(mol)
    if channel.kind == "addition":
        c = channel.carbon
        ns = sorted(nb[c])
        n = np.cross(pos[ns[0]] - pos[c], pos[ns[1]] - pos[c]) if len(ns) >= 2 else \
            rng.standard_normal(3)
        n = _unit(n) * (1 if rng.random() < 0.5 else -1)
        o = pos[c] + distance_A * n
    else:
        h = site if site is not None else int(rng.choice(channel.sites))
        cs = [k for k, x in enumerate(mol.get_chemical_symbols()) if x == "C"]
        c = min(cs, key=lambda k: float(np.linalg.norm(pos[k] - pos[h])))  # its carbon
        u = _unit(pos[h] - pos[c])
        r_ch = float(np.linalg.norm(pos[h] - pos[c]))
        o = pos[c] + (r_ch + distance_A) * u
        pos[h] = pos[c] + (r_ch + transfer * (r_ch + distance_A - OH_BOND_A - r_ch)) * u
    oh_h = o + OH_BOND_A * _away(rng, _unit(o - pos[channel.carbon]))
    out = Atoms(oh.get_chemical_symbols() + mol.get_chemical_symbols(),
                positions=np.vstack([o, oh_h, pos]), pbc=False)
    out.info.update(channel=channel.name, distance_A=float(distance_A))
    return out


def thermal_states(mol: Atoms, calc, temperature_K: float, n_states: int, every: int = 20,
                   timestep_fs: float = 0.5, friction_per_fs: float = 0.02,
                   seed: int = 0) -> list[Atoms]:
    """``n_states`` thermal states of one molecule.

    Langevin MD on ``calc`` (an ASE calculator, e.g. GFN2-xTB), 2 x ``every`` steps of
    equilibration, then a frame every ``every`` steps (positions and velocities).
    """
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    at = mol.copy()
    at.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(at, temperature_K=temperature_K, rng=rng)
    dyn = Langevin(at, timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, rng=rng, fixcm=False)
    dyn.run(2 * every)
    out = []
    for _ in range(n_states):
        dyn.run(every)
        s = Atoms(at.get_chemical_symbols(), positions=at.positions, pbc=False)
        s.set_velocities(at.get_velocities())
        out.append(s)
    return out


def _oriented(at: Atoms, rng: np.random.Generator) -> np.ndarray:
    from atmospheric.qct import random_rotations

    p = at.positions - at.get_center_of_mass()
    return p @ random_rotations(rng, 1)[0].T


def training_frames(oh_states: list[Atoms], voc_states: list[Atoms], chans: list[Channel],
                    *, n_far: int, n_path: int, path_from_A: float = 3.6,
                    rattle_A: float = 0.04, seed: int = 0) -> list[Atoms]:
    """Build supersystem frames (OH's atoms first), non-periodic, with ``info["kind"]`` set.

    The kinds:

    * ``far``: a thermal state of each reactant, random orientations, centres 5-9 Å apart;
    * ``path``: per channel, ``n_path`` frames with O from ``path_from_A`` to the product's
      bond length (1.45 Å C-O; for abstraction, O-H from 2.4 Å with the H transferred over
      the last part), thermal VOC states, rattled by ``rattle_A`` (Gaussian, Å).
    """
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_far):
        a, b = oh_states[k % len(oh_states)], voc_states[k % len(voc_states)]
        d = rng.uniform(5.0, 9.0) * _unit(rng.standard_normal(3))
        f = Atoms(a.get_chemical_symbols() + b.get_chemical_symbols(),
                  positions=np.vstack([_oriented(a, rng), _oriented(b, rng) + d]), pbc=False)
        f.info.update(kind="far", distance_A=float(np.linalg.norm(d)))
        out.append(f)
    for ch in chans:
        if ch.kind == "addition":
            dists, transfer = np.linspace(path_from_A, 1.45, n_path), np.zeros(n_path)
        else:
            dists = np.linspace(path_from_A - 1.0, 1.0, n_path)
            transfer = np.clip((dists[0] - dists) / (dists[0] - dists[-1]) * 1.5 - 0.5, 0, 1)
        for k, (d, t) in enumerate(zip(dists, transfer, strict=True)):
            mol = voc_states[(k + 7) % len(voc_states)]
            f = complex_at(oh_states[k % len(oh_states)], mol, ch, float(d), rng,
                           transfer=float(t))
            f.positions += rng.normal(0.0, rattle_A, f.positions.shape)
            f.info.update(kind="path")
            out.append(f)
    return out


def _random_start(oh: Atoms, mol: Atoms, gap_A: float, rng: np.random.Generator) -> Atoms:
    """Place OH (random orientation) on a random line through the VOC's centre of mass.

    OH is slid in until its nearest atom is ``gap_A`` from the VOC's nearest atom; OH's atoms
    first.
    """
    a, b = _oriented(oh, rng), mol.positions - mol.get_center_of_mass()
    u = _unit(rng.standard_normal(3))
    lo, hi = 0.0, 20.0
    for _ in range(40):  # bisection on the distance of the centres along u
        mid = 0.5 * (lo + hi)
        gap = np.linalg.norm(a[:, None] + mid * u - b[None], axis=-1).min()
        lo, hi = (mid, hi) if gap < gap_A else (lo, mid)
    out = Atoms(oh.get_chemical_symbols() + mol.get_chemical_symbols(),
                positions=np.vstack([a + hi * u, b]), pbc=False)
    out.info.update(channel="random", distance_A=float(hi))
    return out


def _approach(at: Atoms, n_oh: int, oh_vel: np.ndarray, voc_vel: np.ndarray,
              temperature_K: float, rng: np.random.Generator) -> None:
    """Set the velocities.

    Each reactant's internal velocities (its own centre-of-mass motion removed) and a relative speed
    from the flux-weighted thermal distribution (E ~ Gamma(2, kT)) along the line of centres,
    inwards; total momentum zero.
    """
    from ase import units

    m = at.get_masses()
    ma, mb = m[:n_oh].sum(), m[n_oh:].sum()
    mu = ma * mb / (ma + mb)
    line = _unit(at.positions[n_oh:].T @ m[n_oh:] / mb - at.positions[:n_oh].T @ m[:n_oh] / ma)
    oh_vel = oh_vel - m[:n_oh] @ oh_vel / ma
    voc_vel = voc_vel - m[n_oh:] @ voc_vel / mb
    v_rel = np.sqrt(2 * rng.gamma(2.0, units.kB * temperature_K) / mu) * line
    vel = np.vstack([oh_vel + mb / (ma + mb) * v_rel, voc_vel - ma / (ma + mb) * v_rel])
    at.set_velocities(vel - (m[:, None] * vel).sum(0) / m.sum())


def reactive_frames(oh_states: list[Atoms], voc_states: list[Atoms], chans: list[Channel],
                    calc, *, n_trajectories: int, steps: int, every: int,
                    temperature_K: float, timestep_fs: float = 0.5,
                    gap_A: tuple[float, float] = (2.2, 3.2), after_steps: int = 30,
                    seed: int = 0) -> tuple[list[Atoms], dict]:
    """Collect frames from short NVE trajectories on the reference ``calc``.

    ``calc`` is an ASE calculator for the supersystem, e.g. GFN2-xTB doublet.

    Trajectory ``k`` starts from a thermal state of the VOC (positions and velocities) and OH with
    Maxwell-Boltzmann velocities at ``temperature_K``, placed at channel ``k % (len(chans) + 1)``'s
    site (:func:`complex_at`, O 2.8-3.8 Å from it) or, for the extra slot, on a random line with its
    nearest atom ``gap_A`` from the VOC's; a thermal approach speed at ``temperature_K``. It runs
    ``steps`` steps of ``timestep_fs`` and ends ``after_steps`` steps after a channel's criterion
    first holds, when the reactants fly apart (centres 8 Å), or when the reference fails (SCF); a
    frame every ``every`` steps (``info["kind"] = "reactive"``). Returns the frames (no labels
    kept: they go through :func:`label_frames`) and a report ``{n_trajectories, n_frames,
    outcomes: {channel|"none"|"failed": n}}``.
    """
    from ase import units
    from ase.md.verlet import VelocityVerlet

    from atmospheric.qct import parse_criteria

    rng = np.random.default_rng(seed)
    n_oh = len(oh_states[0])
    crit = parse_criteria([c for ch in chans for c in ch.criteria], n_oh, len(voc_states[0]))
    out, outcomes = [], {}
    for k in range(n_trajectories):
        slot = k % (len(chans) + 1)
        oh, mol = oh_states[k % len(oh_states)], voc_states[(3 * k + 1) % len(voc_states)]
        if slot < len(chans):
            at = complex_at(oh, mol, chans[slot], float(rng.uniform(2.8, 3.8)), rng)
        else:
            at = _random_start(oh, mol, float(rng.uniform(*gap_A)), rng)
        m_oh = at.get_masses()[:n_oh]
        vo = rng.standard_normal((n_oh, 3)) * np.sqrt(units.kB * temperature_K / m_oh)[:, None]
        vv = mol.get_velocities() if mol.has("momenta") else np.zeros((len(mol), 3))
        _approach(at, n_oh, vo, vv, temperature_K, rng)
        at.calc = calc
        dyn = VelocityVerlet(at, timestep_fs * units.fs)
        outcome, hit_at = "none", None
        for step in range(steps + 1):
            if step % every == 0:
                f = Atoms(at.get_chemical_symbols(), positions=at.positions.copy(), pbc=False)
                f.info.update(kind="reactive", trajectory=k, step=step)
                out.append(f)
            fired = [c.channel for c in crit if c.holds(at.positions)]
            if fired and hit_at is None:
                outcome, hit_at = fired[0], step
            if hit_at is not None and step - hit_at >= after_steps:
                break
            com = at.positions[n_oh:].mean(0) - at.positions[:n_oh].mean(0)
            if step == steps or np.linalg.norm(com) > 8.0:
                break
            try:
                dyn.run(1)
            except Exception:  # noqa: BLE001 -- the reference's SCF failed: end this one
                outcome = "failed"
                break
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return out, {"n_trajectories": n_trajectories, "n_frames": len(out),
                 "outcomes": outcomes}


def labeller_spec(**overrides):
    """Return the issue's GFN2-xTB labeller (:data:`LABELLER`), with overrides."""
    from common.labels import make_spec

    p = {**LABELLER, **overrides}
    return make_spec(p.pop("name"), **p)


def label_frames(frames: list[Atoms], db: str | Path, spec=None, box_A: float = BOX_A
                 ) -> tuple[list[Atoms], dict]:
    """Label ``frames`` through :mod:`common.labels` (cached in ``db``).

    A rerun labels only what is missing. Returns the labelled frames, centred in a periodic
    ``box_A`` box (nequip takes a cell; the molecules never meet their images), without tblite's
    extra results, and the label report. Frames whose SCF failed are left out (counted in the
    report).
    """
    from ase.calculators.singlepoint import SinglePointCalculator

    from common.labels import label_structures, labelled_frames

    spec = spec or labeller_spec()
    report = label_structures(frames, spec, db, progress=False, cluster="serial")
    out = []
    for src, lab in zip(frames, labelled_frames(frames, spec, db), strict=True):
        if lab is None:
            continue
        f = Atoms(lab.get_chemical_symbols(), positions=lab.positions, cell=[box_A] * 3,
                  pbc=True)
        f.info.update({k: v for k, v in src.info.items() if isinstance(v, str | int | float)})
        e, forces = lab.get_potential_energy(), lab.get_forces()
        shift = f.cell.sum(0) / 2 - f.positions.mean(0)
        f.positions += shift
        f.calc = SinglePointCalculator(f, energy=e, forces=forces)
        out.append(f)
    return out, report.to_dict()
