"""Labelled training frames from Langevin MD with any ASE calculator: :func:`md_snapshots`."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms, units

from catalysis.systems.calculators import _as_calculator
from common.data.dataset import with_labels
from common.errors import ConfigError, SimulationError


def md_snapshots(
    atoms: Atoms,
    calculator: Any,
    n_frames: int,
    temperature_K: float = 300.0,
    timestep_fs: float = 0.5,
    interval: int = 10,
    seed: int = 0,
    *,
    friction_per_ps: float = 1.0,
    max_force_eV_A: float = 50.0,
) -> list[Atoms]:
    """Labelled frames from Langevin MD (``ase.md.langevin``) with any ASE calculator.

    Parameters
    ----------
    atoms : ase.Atoms
        Start structure (FixAtoms constraints are honoured; not modified).
    calculator : ASE calculator, LabellerSpec or str
        The labeller (``"emt"``, an xtb spec...) or a trained model's calculator.
    n_frames : int
        Frames returned; one every ``interval`` steps (the start is not included).
    temperature_K, timestep_fs, friction_per_ps : float
        Thermostat temperature (K), step (fs; 0.5 with H present) and Langevin friction (1/ps).
    seed : int
        Seeds the Maxwell-Boltzmann velocities and the thermostat noise.
    max_force_eV_A : float
        Blow-up guard: a larger force (or a non-finite energy) stops the run.

    Returns
    -------
    list of ase.Atoms
        Each with energy (eV) and the unconstrained forces (eV/Å) on a SinglePointCalculator;
        ``info``: ``md_step``, ``md_time_fs``, ``md_temperature_K`` (instantaneous) and
        ``temperature_K`` (target).

    Raises
    ------
    SimulationError
        On blow-up; the frames made so far are on the exception's ``frames`` attribute.
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    if int(n_frames) < 1 or int(interval) < 1:
        raise ConfigError(f"n_frames={n_frames}, interval={interval} must be >= 1",
                          where="md_snapshots", fix="ask for at least one frame and step")
    if not (timestep_fs > 0 and temperature_K >= 0 and friction_per_ps > 0):
        raise ConfigError(
            f"timestep_fs={timestep_fs}, temperature_K={temperature_K}, friction_per_ps="
            f"{friction_per_ps}", where="md_snapshots",
            fix="use timestep_fs > 0 (0.5 with H), temperature_K >= 0, friction_per_ps > 0")
    calc = _as_calculator(calculator)
    a = atoms.copy()
    a.calc = calc
    rng = np.random.default_rng(seed)
    MaxwellBoltzmannDistribution(a, temperature_K=float(temperature_K), rng=rng)
    dyn = Langevin(a, float(timestep_fs) * units.fs, temperature_K=float(temperature_K),
                   friction=float(friction_per_ps) / (1000.0 * units.fs),
                   fixcm=not a.constraints, rng=rng)
    frames: list[Atoms] = []
    for k in range(int(n_frames)):
        dyn.run(int(interval))
        energy = float(a.get_potential_energy())
        forces = np.array(a.get_forces(apply_constraint=False), dtype=float)
        step = (k + 1) * int(interval)
        fmax = float(np.linalg.norm(forces, axis=1).max()) if len(forces) else 0.0
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))) or fmax > max_force_eV_A:
            err = SimulationError(
                f"MD blew up (energy {energy:.4g} eV, max force {fmax:.3g} eV/Å)",
                where=f"md_snapshots step {step}",
                fix="lower timestep_fs or temperature_K, or check the start structure")
            err.frames = frames  # type: ignore[attr-defined]
            raise err
        snap = a.copy()
        snap.calc = None
        frame = with_labels(snap, energy=energy, forces=forces)
        frame.info.update(md_step=step, md_time_fs=step * float(timestep_fs),
                          md_temperature_K=float(a.get_temperature()),
                          temperature_K=float(temperature_K), sample="md")
        frames.append(frame)
    return frames
