"""Barriers of detected events.

Each barrier is a climbing-image NEB between the relaxed states before and after each event, with
the trained potential.

For an event at frame ``f`` of a trajectory, the initial state is frame ``f - window`` and the
final state frame ``f + window``; both are relaxed (fixed atoms stay fixed), then a CI-NEB with
IDPP-interpolated images gives the barrier (highest image minus relaxed initial state) and the
reaction energy (final minus initial).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from common.errors import ConfigError


@dataclass
class Barrier:
    """The result of one CI-NEB: barrier, reaction energy and convergence, eV and eV/Å.

    ``barrier_eV`` is the highest image minus the relaxed initial state, ``reaction_energy_eV``
    the final minus the initial state, ``energies_eV`` the energies of all images (end states
    included), ``max_force_eV_A`` the largest NEB force at the end.
    """

    barrier_eV: float
    reaction_energy_eV: float
    neb_converged: bool
    n_images: int
    max_force_eV_A: float
    energies_eV: list[float]
    label: str = ""

    def as_dict(self) -> dict:
        """Return the fields as a plain dict (JSON-ready)."""
        return asdict(self)


def _relax(atoms: Atoms, calc, fmax: float, steps: int) -> Atoms:
    from ase.optimize import BFGS

    a = atoms.copy()
    a.calc = calc
    BFGS(a, logfile=None).run(fmax=fmax, steps=steps)
    return a


def neb_barrier(initial: Atoms, final: Atoms, calculator_factory, *, n_images: int = 5,
                fmax_eV_A: float = 0.1, relax_fmax_eV_A: float = 0.05, steps: int = 300,
                relax: bool = True, label: str = "") -> Barrier:
    """CI-NEB barrier between ``initial`` and ``final`` (same atoms, same order).

    ``calculator_factory()`` returns a fresh ASE calculator (one per image).
    """
    from ase.mep import NEB
    from ase.optimize import FIRE

    if len(initial) != len(final) or not np.array_equal(initial.numbers, final.numbers):
        raise ConfigError("initial and final states hold different atoms", where=label or "NEB",
                          fix="take both states from the same trajectory")
    if n_images < 1:
        raise ConfigError("need at least one intermediate image", where="n_images",
                          fix="use n_images >= 1 (5-7 is usual)")
    ini = _relax(initial, calculator_factory(), relax_fmax_eV_A, steps) if relax \
        else _with_calc(initial, calculator_factory())
    fin = _relax(final, calculator_factory(), relax_fmax_eV_A, steps) if relax \
        else _with_calc(final, calculator_factory())
    images = [ini] + [ini.copy() for _ in range(n_images)] + [fin]
    for im in images[1:-1]:
        im.calc = calculator_factory()
    neb = NEB(images, climb=True, k=0.1, method="improvedtangent")
    neb.interpolate(method="idpp", mic=True)
    opt = FIRE(neb, logfile=None)
    converged = bool(opt.run(fmax=fmax_eV_A, steps=steps))
    energies = [float(im.get_potential_energy()) for im in images]
    fmax_now = float(np.sqrt((neb.get_forces() ** 2).sum(1).max()))
    return Barrier(barrier_eV=max(energies) - energies[0],
                   reaction_energy_eV=energies[-1] - energies[0], neb_converged=converged,
                   n_images=n_images, max_force_eV_A=fmax_now, energies_eV=energies,
                   label=label)


def _with_calc(atoms: Atoms, calc) -> Atoms:
    a = atoms.copy()
    a.calc = calc
    return a


def event_barriers(frames_by_trajectory: dict[str, list[Atoms]], events: list[dict],
                   calculator_factory, *, window_frames: int = 2, **neb_kw) -> dict:
    """Compute the NEB barriers of detected events: per-event results and the distribution.

    ``events`` are dicts with ``trajectory`` and ``frame``, as from ``mlp-catalysis events
    --json``.
    """
    results = []
    for ev in events:
        frames = frames_by_trajectory[ev["trajectory"]]
        f = int(ev["frame"])
        a, b = max(0, f - window_frames), min(len(frames) - 1, f + window_frames)
        label = f"{ev['trajectory']} frame {f}"
        try:
            bar = neb_barrier(frames[a], frames[b], calculator_factory, label=label, **neb_kw)
            results.append({**ev, **bar.as_dict()})
        except Exception as exc:  # one failed NEB must not lose the others
            results.append({**ev, "error": f"{type(exc).__name__}: {exc}".splitlines()[0]})
    ok = [r["barrier_eV"] for r in results if "barrier_eV" in r and r["neb_converged"]]
    return {"events": results, "n": len(ok),
            "mean_eV": float(np.mean(ok)) if ok else None,
            "std_eV": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
            "barriers_eV": ok}
