"""Active learning's guard against absurd exploration frames, and the production temperature
check: fast, on hand-made labelled frames and synthetic temperature series."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from common.errors import ConfigError
from electrolytes.active_learning import (
    ALSettings,
    lowest_energies,
    refuse_absurd,
    retrain_config,
)
from electrolytes.case_study import held, temperature_check
from electrolytes.screening import block_error


def _frame(symbols: str, e_per_atom: float, fmax: float) -> Atoms:
    a = Atoms(symbols)
    a.positions = 1.5 * np.arange(3 * len(a)).reshape(-1, 3)
    f = np.zeros((len(a), 3))
    f[0, 2] = fmax
    a.calc = SinglePointCalculator(a, energy=e_per_atom * len(a), forces=f)
    return a


def test_frames_far_above_the_relaxed_cell_or_with_huge_forces_are_refused():
    initial = [_frame("LiF", -10.0, 1.0), _frame("LiF", -10.2, 0.5), _frame("H2O", -5.0, 0.1)]
    ref = lowest_energies(initial)
    assert ref == {"FLi": -10.2, "H2O": -5.0}
    frames = [_frame("LiF", -10.1, 2.0),    # 0.1 eV/atom above: kept
              _frame("LiF", -9.0, 2.0),     # 1.2 eV/atom above: refused (energy)
              _frame("LiF", -10.15, 30.0),  # force 30 eV/Å: refused (force)
              _frame("H2O", 20.0, 40.0),    # both: counted once, as energy
              _frame("CO", 50.0, 1.0)]      # formula not in the initial data: force only
    kept, rec = refuse_absurd(frames, ref, 0.5, 20.0)
    assert [a.get_chemical_formula() for a in kept] == ["FLi", "CO"]
    assert (rec["n_labelled"], rec["n_kept"], rec["n_refused_energy"],
            rec["n_refused_force"]) == (5, 2, 2, 1)
    assert rec["largest_energy_above_eV_per_atom"] == pytest.approx(25.0)
    assert rec["largest_force_eV_A"] == pytest.approx(40.0)
    kept, rec = refuse_absurd(frames, ref, None, None)  # both tests off
    assert len(kept) == 5 and rec["n_refused_energy"] == rec["n_refused_force"] == 0


def test_refusal_bounds_are_checked():
    base = dict(iterations=1, temperatures_K=[300.0], md_steps=10, timestep_fs=0.5,
                friction_per_ps=1.0, frame_every=1, trust_lo_eV_A=0.1, trust_hi_eV_A=1.0,
                max_new=2, accurate_fraction=0.9, committee_size=2)
    assert ALSettings(**base).check().max_energy_above_eV_per_atom == 0.5
    with pytest.raises(ConfigError, match="max_force_eV_A must be > 0"):
        ALSettings(**base, max_force_eV_A=0.0).check()


def test_a_continued_member_trains_with_dp_gens_reuse_schedule():
    """A member continued from the last iteration's weights starts at DP-GEN's reuse learning
    rate and prefactors, not at the from-scratch schedule's (which let energies drift)."""
    from electrolytes.model import load_config

    base = load_config("tiny", start_lr=0.002)
    s = ALSettings(iterations=2, temperatures_K=[300.0], md_steps=10, timestep_fs=0.5,
                   friction_per_ps=1.0, frame_every=1, trust_lo_eV_A=0.1, trust_hi_eV_A=1.0,
                   max_new=2, accurate_fraction=0.9, committee_size=2,
                   retrain_steps=300).check()
    cfg = retrain_config(base, s)
    assert cfg["numb_steps"] == 300 and cfg["save_freq"] == 300
    assert cfg["start_lr"] == max(1e-4, base["stop_lr"]) <= base["start_lr"]
    assert (cfg["start_pref_e"], cfg["start_pref_f"]) == (0.1, 100.0)
    assert cfg["limit_pref_e"] == base["limit_pref_e"] and cfg["neuron"] == base["neuron"]
    with pytest.raises(ConfigError, match="retrain_start_lr"):
        ALSettings(**{**s.to_dict(), "retrain_start_lr": 0.0}).check()


def test_block_error_matches_the_scatter_of_means_of_a_correlated_series():
    """AR(1) series (correlation time ~10 samples): the block standard error of one series
    agrees with the spread of the means of 200 independent series within ~25 %."""
    rng = np.random.default_rng(0)
    phi, n = 0.9, 2000
    means, errs = [], []
    for _ in range(200):
        x = np.empty(n)
        x[0] = rng.normal() / np.sqrt(1 - phi**2)
        for k in range(1, n):
            x[k] = phi * x[k - 1] + rng.normal()
        means.append(x.mean())
        errs.append(block_error(x, 5))
    ratio = np.mean(errs) / np.std(means)
    assert 0.75 < ratio < 1.25, ratio
    assert block_error(np.ones(3), 5) is None


def test_temperature_check_reports_deviation_and_held():
    rows = [{"temperature_K": 300.0, "md_temperature_K": 306.0, "md_temperature_err_K": 4.0},
            {"temperature_K": 300.0, "md_temperature_K": 400.0, "md_temperature_err_K": 5.0},
            {"temperature_K": 300.0}]
    chk = temperature_check(rows)
    assert chk[0]["deviation_pct"] == pytest.approx(2.0) and chk[0]["z"] == pytest.approx(1.5)
    assert [c["held"] for c in chk] == [True, False, None]
    assert held(rows[1], tolerance=0.5)
