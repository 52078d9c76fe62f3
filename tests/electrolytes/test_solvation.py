"""electrolytes.solvation: RDFs, first-shell cutoff, shell composition, residence times.

The shell tests use a hand-built Li+ with 3 EC + 1 DEC whose carbonyl O sit at 2.00 Å (the
next O of those molecules is 4.15 Å away) and one more EC outside the shell. Statistical
tolerances: g(r) of an ideal gas is 1 within 4 Poisson standard errors of the pair count;
the residence time of a two-state Markov presence series matches ``1/a - 1/2`` frames (the
trapezoid integral of ``(1-a)^k``) within 4 relative standard errors of a mean of geometric
run lengths, ``~1/sqrt(number of runs)``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from ase import Atoms

from common.errors import ConfigError, DataError, MlpCasesError
from electrolytes.solvation import (
    composition_name,
    continuous_acf,
    first_shell_cutoff,
    plot_rdf,
    rdf,
    residence_time_ps,
    solvation_shells,
)


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text and "fix:" in text, text
    return text


def test_hand_built_shell(make_li_shell, tmp_path):
    shell = make_li_shell()
    d = shell.get_distances(0, [k for k, s in enumerate(shell.get_chemical_symbols())
                                if s == "O"], mic=True)
    assert np.sum(np.isclose(d, 2.0)) == 4 and np.sort(d)[4] > 4.1  # as built
    res = solvation_shells([shell])
    assert res.compositions == {"Li+(EC)3(DEC)1": 1.0}
    assert res.mean_shell == {"DEC": 1.0, "EC": 3.0}
    assert res.coordination == {"O": 4.0}
    assert list(res.rdfs) == ["O"]  # no F: only the Li-O RDF
    assert res.first_peak_A["O"] == pytest.approx(2.0, abs=0.02)
    assert 2.1 < res.cutoffs_A["O"] < 4.1
    r = res.rdfs["O"]
    assert r.n_r[np.searchsorted(r.r_A, res.cutoffs_A["O"])] == 4.0
    assert res.residence_times_ps == {} and res.dt_fs is None
    out = res.to_dict()
    assert out["compositions"] == {"Li+(EC)3(DEC)1": 1.0}
    assert plot_rdf(res, tmp_path / "rdf.png").stat().st_size > 0


def test_names_map_and_unnamed_formula(make_li_shell):
    res = solvation_shells([make_li_shell()], names={"C3H4O3": "ethylene carbonate"})
    assert res.compositions == {"Li+(ethylene carbonate)3(C5H10O3)1": 1.0}
    assert composition_name({"PF6": 1, "EC": 2, "DEC": 0, "X": 1}) == "Li+(EC)2(PF6)1(X)1"
    assert composition_name({}, "Na+") == "Na+"


def test_given_cutoff_wins(make_li_shell):
    res = solvation_shells([make_li_shell()], cutoffs_A={"O": 1.5})
    assert res.compositions == {"Li+": 1.0} and res.coordination == {"O": 0.0}


def test_residence_time_of_a_leaving_dec(make_li_shell):
    """DEC in the shell for frames 0-49 of 200 (10 fs apart), then 8 Å further out:
    C(k) = (50 - k)/50, whose trapezoid integral is 25 frames = 0.25 ps exactly."""
    near, away = make_li_shell(), make_li_shell(dec_away=True)
    frames = [near.copy() for _ in range(50)] + [away.copy() for _ in range(150)]
    res = solvation_shells(frames, dt_fs=10.0)
    assert res.compositions == {"Li+(EC)3": 0.75, "Li+(EC)3(DEC)1": 0.25}
    assert res.residence_times_ps["DEC"] == pytest.approx(0.25, rel=1e-12)
    assert res.residence_decayed == {"DEC": True, "EC": False}
    assert res.residence_times_ps["EC"] == pytest.approx(1.0)  # never left: half the run
    assert any("EC residence" in n and "lower bound" in n for n in res.notes)
    # a one-frame exit at frame 20 shortens it, unless forgiven by the persistence filter
    frames[20] = away.copy()
    flicker = solvation_shells(frames, dt_fs=10.0)
    assert flicker.residence_times_ps["DEC"] < 0.2
    forgiven = solvation_shells(frames, dt_fs=10.0, min_persistence_fs=20.0)
    assert forgiven.residence_times_ps["DEC"] == pytest.approx(0.25, rel=1e-12)


def test_continuous_acf_matches_definition():
    rng = np.random.default_rng(1)
    h = rng.random((40, 6)) < 0.7
    n_t = len(h)
    brute = []
    for k in range(n_t):
        num = den = 0
        for t0 in range(n_t - k):
            den += h[t0].sum()
            num += np.all(h[t0:t0 + k + 1], axis=0).sum()
        brute.append(num / den if den else np.nan)
    np.testing.assert_allclose(continuous_acf(h), brute, rtol=1e-12, equal_nan=True)


def test_residence_time_of_markov_presence():
    a = b = 0.05  # leave / enter probability per frame
    rng = np.random.default_rng(2)
    n_t, n_p = 4000, 200
    u = rng.random((n_t, n_p))
    h = np.zeros((n_t, n_p), dtype=bool)
    h[0] = rng.random(n_p) < b / (a + b)
    for t in range(1, n_t):
        h[t] = np.where(h[t - 1], u[t] >= a, u[t] < b)
    tau, decayed = residence_time_ps(continuous_acf(h), dt_fs=2.0)
    n_runs = int(np.sum(np.diff(h.astype(int), axis=0) == 1))
    expected = (1 / a - 0.5) * 2.0 / 1000.0
    assert decayed
    assert abs(tau / expected - 1) < 4 / math.sqrt(n_runs), (tau, expected, n_runs)


def test_rdf_of_an_ideal_gas_is_one():
    rng = np.random.default_rng(4)
    box = 12.0
    frames = [Atoms(["Li"] * 20 + ["O"] * 100, positions=rng.uniform(0, box, (120, 3)),
                    cell=[box] * 3, pbc=True) for _ in range(40)]
    for other, n_other in (("O", 100), ("Li", 19)):
        r = rdf(frames, "Li", other, r_max_A=7.0, bin_A=0.1)
        assert r.edges_A[-1] < 6.0  # kept under half the box
        sel = r.r_A > 1.0
        shell = 4 / 3 * np.pi * (r.edges_A[1:] ** 3 - r.edges_A[:-1] ** 3)
        expected = 40 * 20 * n_other / box**3 * shell[sel]
        counts = r.g[sel] * expected
        mean_g = counts.sum() / expected.sum()
        assert abs(mean_g - 1) < 4 / math.sqrt(counts.sum()), (other, mean_g)
        n_ideal = n_other / box**3 * 4 / 3 * np.pi * r.edges_A[-1] ** 3
        assert abs(r.n_r[-1] / n_ideal - 1) < 4 / math.sqrt(counts.sum())


def test_first_shell_cutoff_on_a_known_curve():
    r = np.arange(0.01, 8.0, 0.02)
    g = (8 * np.exp(-((r - 2.0) ** 2) / 0.02) + 1.5 * np.exp(-((r - 4.2) ** 2) / 0.3)
         + 1 / (1 + np.exp(-(r - 3.0) * 3)))
    between = (r > 2.0) & (r < 4.2)
    r_min = r[between][np.argmin(g[between])]
    peak, cut = first_shell_cutoff(r, g)
    assert peak == pytest.approx(2.0, abs=0.03) and cut == pytest.approx(r_min, abs=0.06)
    assert first_shell_cutoff(r, 0.5 * np.ones_like(r)) is None
    assert first_shell_cutoff(r, np.where(r < 2.0, 0.0, 3.0)) is None  # no fall after it


@pytest.mark.parametrize("case, exc, words", [
    ("center absent", ConfigError, "species Na is not in the trajectory"),
    ("ligand absent", ConfigError, "species N is not in the trajectory"),
    ("no cell", DataError, "no periodic cell"),
    ("dt zero", ConfigError, "time step must be > 0"),
    ("bad cutoff", ConfigError, "cutoff for O"),
])
def test_bad_input_one_line_errors(make_li_shell, case, exc, words):
    shell = make_li_shell()
    no_cell = shell.copy()
    no_cell.pbc = False
    no_cell.cell = np.zeros((3, 3))
    calls = {
        "center absent": lambda: solvation_shells([shell], center="Na"),
        "ligand absent": lambda: solvation_shells([shell], ligands=["N"]),
        "no cell": lambda: solvation_shells([no_cell]),
        "dt zero": lambda: solvation_shells([shell, shell.copy()], dt_fs=0.0),
        "bad cutoff": lambda: solvation_shells([shell], cutoffs_A={"O": -1.0}),
    }
    with pytest.raises(exc) as info:
        calls[case]()
    assert isinstance(info.value, MlpCasesError)
    assert words in one_line(info.value)
