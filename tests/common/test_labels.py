"""common.labels and ``mlp-cases label``: presets agree with the calculators called directly,
errors are one line before any compute, and labelling resumes after ``kill -9``."""

from __future__ import annotations

import json
import os
import pickle
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import ase.io
import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk, molecule
from ase.calculators.emt import EMT

from common.data.io import structure_hash
from common.errors import ConfigError
from common.labels import (
    LabelDB,
    LabellerSpec,
    check_supported,
    label_structures,
    labelled_frames,
    make_calculator,
    make_spec,
)

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------


def _env(extra_path: Path | None = None) -> dict[str, str]:
    env = dict(os.environ)
    paths = [str(REPO)] + ([str(extra_path)] if extra_path else [])
    if env.get("PYTHONPATH"):
        paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["OMP_NUM_THREADS"] = "1"
    env.pop("MLP_CASES_DEBUG", None)
    return env


def _cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "common.cli.main", "label", *args]


def _run_cli(
    *args: str, cwd: Path, extra_path: Path | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    return subprocess.run(
        _cli_args(*args),
        cwd=cwd,
        env=_env(extra_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.5)
        try:
            return int(con.execute("SELECT COUNT(*) FROM systems").fetchone()[0])
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet, or locked for a moment
        return -1


def _water_clusters(n_frames: int, seed: int = 0) -> list[Atoms]:
    """Unique rattled clusters of 4-9 water molecules (~10-40 ms each with GFN2-xTB)."""
    rng = np.random.default_rng(seed)
    grid = [np.array((i, j, k)) * 2.9 for i in range(3) for j in range(3) for k in range(3)]
    frames = []
    for f in range(n_frames):
        at = Atoms()
        for g in grid[: 4 + f % 6]:
            m = molecule("H2O")
            m.rotate(rng.uniform(0, 360), "z")
            m.rotate(rng.uniform(0, 360), "x")
            m.translate(g)
            at += m
        at.rattle(0.03, seed=1000 + f)
        frames.append(at)
    return frames


def _small_molecules(n: int) -> list[Atoms]:
    out = []
    for i in range(n):
        a = molecule(("H2O", "CH4", "NH3")[i % 3])
        a.rattle(0.05, seed=i)
        out.append(a)
    return out


def _assert_one_error_line(res: subprocess.CompletedProcess, *needles: str) -> str:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


# ------------------------------------------------------------------------------------------
# specs and checks (no compute)
# ------------------------------------------------------------------------------------------


def test_spec_key_is_canonical_and_picklable():
    a = LabellerSpec("xtb")
    b = LabellerSpec("XTB", {"method": "gfn2", "electronic_temperature_K": 300, "charge": None})
    assert a == b and a.key() == b.key() and hash(a) == hash(b)
    assert LabellerSpec("xtb", {"method": "GFN1-xTB"}).key() != a.key()
    assert pickle.loads(pickle.dumps(a)) == a
    p = make_spec("pyscf", multiplicity=3, basis="STO-3G")
    assert p.params["spin"] == 2 and p.params["basis"] == "sto-3g"
    assert "multiplicity" not in p.params
    assert a.label() == "xtb(GFN2-xTB)"


@pytest.mark.parametrize(
    ("atoms", "spec", "needles"),
    [
        (molecule("SiH4"), LabellerSpec("emt"), ["element Si", "'emt'", "frame 7", "--calc xtb"]),
        (bulk("Fe"), LabellerSpec("emt"), ["element Fe", "--calc xtb"]),
        (
            molecule("H2O"),
            LabellerSpec("xtb", {"multiplicity": 2}),
            ["multiplicity 2 is impossible with 10 electrons", "frame 7", "--multiplicity 1"],
        ),
        (molecule("H2O"), LabellerSpec("xtb", {"multiplicity": 0}), ["multiplicity must be >= 1"]),
        (
            molecule("H2"),
            LabellerSpec("xtb", {"multiplicity": 5}),
            ["4 unpaired electrons", "2 electrons"],
        ),
        (molecule("H2O"), LabellerSpec("xtb", {"charge": 11}), ["leaves -1 electrons"]),
        (molecule("H2O"), LabellerSpec("gaussian"), ["unknown calculator 'gaussian'", "emt, xtb"]),
        (
            molecule("H2O"),
            LabellerSpec("no_such_module_xyz:Calc"),
            ["cannot import module 'no_such_module_xyz'"],
        ),
        (molecule("H2O"), LabellerSpec("ase.calculators.emt:NoSuch"), ["no attribute 'NoSuch'"]),
        (
            molecule("H2O"),
            LabellerSpec("xtb", {"basis": "sto-3g"}),
            ["parameter 'basis' does not apply to calculator 'xtb'"],
        ),
        (molecule("H2O"), LabellerSpec("xtb", {"method": "GFN3"}), ["unknown xtb method"]),
        (bulk("Cu"), LabellerSpec("pyscf", {"basis": "sto-3g"}), ["molecules only", "frame 7"]),
        (molecule("H2O"), LabellerSpec("pyscf", {"method": "pbx"}), ["unknown pyscf method"]),
    ],
)
def test_check_supported_errors(atoms, spec, needles):
    with pytest.raises(ConfigError) as info:
        check_supported(atoms, spec, where="structs.extxyz frame 7")
    msg = str(info.value)
    assert "\n" not in msg and "fix:" in msg
    for n in needles:
        assert n in msg, (n, msg)


def test_frame_info_overrides_parameters():
    oh = molecule("OH")  # 9 electrons: doublet by default
    check_supported(oh, LabellerSpec("xtb"), "f")
    oh.info["charge"] = -1  # hydroxide: 10 electrons, a doublet is impossible
    check_supported(oh, LabellerSpec("xtb"), "f")
    oh.info["multiplicity"] = 2
    with pytest.raises(ConfigError, match="multiplicity 2 is impossible with 10 electrons"):
        check_supported(oh, LabellerSpec("xtb", {"multiplicity": 1}), "f")
    charged = molecule("H2O")
    charged.info["charge"] = 1
    with pytest.raises(ConfigError, match="cannot label a charged structure"):
        check_supported(charged, LabellerSpec("emt"), "f")


# ------------------------------------------------------------------------------------------
# labels agree with the calculators called directly
# ------------------------------------------------------------------------------------------


def test_emt_labels_cached_deduplicated_and_in_order(tmp_path):
    cu = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 1, 1)
    cu.rattle(0.05, seed=1)
    cluster = Atoms("Cu4", positions=[[0, 0, 0], [2.5, 0, 0], [0, 2.5, 0], [0, 0, 2.5]])
    ag = bulk("Ag", "fcc", a=4.1)
    frames = [cu, cluster, cu.copy(), ag]  # frame 2 repeats frame 0
    db_path = tmp_path / "labels.db"
    rep = label_structures(frames, "emt", db_path, cluster="serial", progress=False)
    assert (rep.n_total, rep.n_unique, rep.n_cached, rep.n_labelled, rep.n_failed) == (
        4,
        3,
        0,
        4,
        0,
    )
    db = LabelDB(db_path)
    assert len(db) == 3
    stored = db.to_frames()
    assert [len(a) for a in stored] == [len(cu), 4, len(ag)]  # input order
    for a, ref in zip(stored, [cu, cluster, ag], strict=True):
        ref = ref.copy()
        ref.calc = EMT()
        assert a.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-10)
        np.testing.assert_allclose(a.get_forces(), ref.get_forces(), atol=1e-10)
        if ref.pbc.all():
            np.testing.assert_allclose(a.get_stress(), ref.get_stress(), atol=1e-10)
    both = labelled_frames(frames, "emt", db)
    assert both[0].get_potential_energy() == both[2].get_potential_energy()
    rep = label_structures(frames, LabellerSpec("emt"), db, cluster="serial", progress=False)
    assert (rep.n_cached, rep.n_labelled) == (4, 0)
    assert len(LabelDB(db_path)) == 3


def test_unwritable_database_fails_before_any_labelling(tmp_path, monkeypatch):
    import common.sweep

    def never(*args, **kwargs):
        raise AssertionError("labelling started for a database that cannot be written")

    monkeypatch.setattr(common.sweep, "run_tasks", never)
    frames = [bulk("Cu", cubic=True)]
    # /proc takes no new files, even for root
    with pytest.raises(ConfigError, match=r"/proc/labels\.db: the label database cannot be "
                                          r"written.*fix: give a path in a folder"):
        label_structures(frames, "emt", "/proc/labels.db", cluster="serial", progress=False)
    if os.geteuid() != 0:  # a read-only folder (root writes anyway)
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(ConfigError, match="cannot be written"):
                label_structures(frames, "emt", ro / "labels.db", cluster="serial",
                                 progress=False)
        finally:
            ro.chmod(0o700)


def test_database_url_needs_its_driver():
    import importlib.util

    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(ConfigError, match="psycopg2.*fix: pip install psycopg2-binary"):
        LabelDB("postgresql://nobody@localhost:1/labels")


def test_xtb_labels_match_tblite_with_charge_spin_and_cell(tmp_path):
    from tblite.ase import TBLite

    water = molecule("H2O")
    water.rattle(0.02, seed=3)
    oh_radical = molecule("OH")  # doublet (lowest possible multiplicity)
    hydroxide = molecule("OH")
    hydroxide.info["charge"] = -1
    triplet_o2 = molecule("O2")
    triplet_o2.info["multiplicity"] = 3
    frames = [water, oh_radical, hydroxide, triplet_o2]
    rep = label_structures(frames, "xtb", tmp_path / "x.db", cluster="serial", progress=False)
    assert rep.n_labelled == 4 and rep.ok
    stored = LabelDB(tmp_path / "x.db").to_frames()
    for a, ref, (q, m) in zip(stored, frames, [(0, 1), (0, 2), (-1, 1), (0, 3)], strict=True):
        ref = ref.copy()
        ref.calc = TBLite(method="GFN2-xTB", charge=q, multiplicity=m, verbosity=0)
        assert a.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
        np.testing.assert_allclose(a.get_forces(), ref.get_forces(), atol=1e-5)
    assert stored[2].info["charge"] == -1 and stored[3].info["multiplicity"] == 3

    si = bulk("Si", "diamond", a=5.43)
    si.rattle(0.02, seed=4)
    spec = LabellerSpec("xtb", {"method": "GFN1-xTB"})
    label_structures([si], spec, tmp_path / "x.db", cluster="serial", progress=False)
    got = LabelDB(tmp_path / "x.db").get(structure_hash(si, extra=spec.key()))
    ref = si.copy()
    ref.calc = TBLite(method="GFN1-xTB", verbosity=0)
    assert got.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    np.testing.assert_allclose(got.get_stress(), ref.get_stress(), atol=1e-6)


def test_xtb_scf_not_converged_names_frame_and_fix(tmp_path):
    frames = _small_molecules(3)
    spec = LabellerSpec("xtb", {"max_iterations": 2})
    rep = label_structures(
        frames, spec, tmp_path / "x.db", cluster="serial", progress=False, source="mols.extxyz"
    )
    assert rep.n_failed == 3 and rep.n_labelled == 0
    msg = rep.failures[1]
    assert msg.startswith("mols.extxyz frame 1: xtb(GFN2-xTB) SCF not converged in 2 cycles")
    assert "GFN1-xTB" in msg and "--electronic-temperature-K" in msg and "\n" not in msg
    assert len(LabelDB(tmp_path / "x.db")) == 0  # failures are not stored
    rep = label_structures(frames, "xtb", tmp_path / "x.db", cluster="serial", progress=False)
    assert rep.n_labelled == 3 and rep.ok


def test_pyscf_labels_match_pyscf_and_finite_differences(tmp_path):
    from ase.units import Bohr, Hartree
    from pyscf import gto, scf

    h2o = molecule("H2O")
    h2o.rattle(0.05, seed=2)
    oh = molecule("OH")  # open shell: UHF
    spec = LabellerSpec("pyscf", {"method": "hf", "basis": "sto-3g"})
    rep = label_structures([h2o, oh], spec, tmp_path / "p.db", cluster="serial", progress=False)
    assert rep.n_labelled == 2 and rep.ok
    got_h2o, got_oh = LabelDB(tmp_path / "p.db").to_frames()

    for got, atoms, spin, cls in ((got_h2o, h2o, 0, scf.RHF), (got_oh, oh, 1, scf.UHF)):
        mol = gto.M(
            atom=[
                (s, p)
                for s, p in zip(atoms.get_chemical_symbols(), atoms.positions.tolist(), strict=True)
            ],
            unit="Angstrom",
            basis="sto-3g",
            spin=spin,
            verbose=0,
        )
        mf = cls(mol)
        mf.conv_tol = 1e-10
        e = mf.kernel()
        grad = mf.nuc_grad_method().kernel()
        assert got.get_potential_energy() == pytest.approx(e * Hartree, abs=1e-6)
        np.testing.assert_allclose(got.get_forces(), -grad * Hartree / Bohr, atol=1e-5)

    calc = make_calculator(spec)
    d = 1e-4  # Å
    fd = []
    for c in range(3):
        es = []
        for sign in (1, -1):
            b = h2o.copy()
            b.positions[0, c] += sign * d
            b.calc = calc
            es.append(b.get_potential_energy())
        fd.append(-(es[0] - es[1]) / (2 * d))
    np.testing.assert_allclose(got_h2o.get_forces()[0], fd, atol=1e-3)


# ------------------------------------------------------------------------------------------
# the CLI
# ------------------------------------------------------------------------------------------


def test_cli_errors_are_one_line_and_keep_the_db(tmp_path):
    db = tmp_path / "labels.db"
    label_structures(
        [bulk("Cu", cubic=True), bulk("Au", cubic=True)],
        "emt",
        db,
        cluster="serial",
        progress=False,
    )
    assert _count_rows(db) == 2
    water = tmp_path / "water.extxyz"
    ase.io.write(water, _small_molecules(3))
    iron = tmp_path / "iron.extxyz"
    ase.io.write(iron, [bulk("Cu"), bulk("Fe")])
    truncated = tmp_path / "truncated.extxyz"
    text = water.read_text().splitlines(keepends=True)
    truncated.write_text("".join(text[: len(text) - 2]))

    cases = [
        (
            ["water.extxyz", "--calc", "gaussian", "--db", "labels.db"],
            ["unknown calculator 'gaussian'", "--calc"],
        ),
        (
            ["iron.extxyz", "--calc", "emt", "--db", "labels.db"],
            ["iron.extxyz frame 1", "element Fe", "--calc xtb"],
        ),
        (
            ["water.extxyz", "--calc", "xtb", "--multiplicity", "2", "--db", "labels.db"],
            ["water.extxyz frame 0", "multiplicity 2 is impossible", "--multiplicity 1"],
        ),
        (
            ["truncated.extxyz", "--calc", "emt", "--db", "labels.db"],
            ["truncated.extxyz frame 2", "cannot read"],
        ),
        (
            ["water.extxyz", "--calc", "no_such_module_xyz:Calc", "--db", "labels.db"],
            ["cannot import module 'no_such_module_xyz'"],
        ),
        (
            ["water.extxyz", "--calc", "ase.calculators.emt:NoSuch", "--db", "labels.db"],
            ["no attribute 'NoSuch'"],
        ),
        (
            ["water.extxyz", "--calc", "xtb", "--basis", "sto-3g", "--db", "labels.db"],
            ["--basis", "does not apply to calculator 'xtb'"],
        ),
    ]
    procs = [
        (
            subprocess.Popen(
                _cli_args(*args),
                cwd=tmp_path,
                env=_env(),
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
            needles,
        )
        for args, needles in cases
    ]
    for proc, needles in procs:
        out, err = proc.communicate(timeout=180)
        res = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
        _assert_one_error_line(res, *needles)
    assert _count_rows(db) == 2
    assert len(LabelDB(db).to_frames()) == 2


_FLAKY_MODULE = '''
from ase.calculators.calculator import all_changes
from ase.calculators.emt import EMT


class FlakyEMT(EMT):
    """EMT that fails on frames flagged info['bad']."""

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        if atoms is not None and atoms.info.get("bad"):
            raise RuntimeError("flaky calculator refused this frame")
        super().calculate(atoms, properties, system_changes)


def make(**params):
    return FlakyEMT(**params)
'''


def test_cli_user_calculator_failures_exit_2_and_keep_the_rest(tmp_path):
    (tmp_path / "userpkg").mkdir()
    (tmp_path / "userpkg" / "flaky_calcs.py").write_text(_FLAKY_MODULE)
    frames = [bulk("Cu", cubic=True), bulk("Ag", cubic=True), bulk("Au", cubic=True)]
    frames[1].info["bad"] = True
    ase.io.write(tmp_path / "metals.extxyz", frames)
    args = [
        "metals.extxyz",
        "--calc",
        "flaky_calcs:make",
        "--db",
        "labels.db",
        "--json",
        "--cluster",
        "serial",
    ]
    res = _run_cli(*args, cwd=tmp_path, extra_path=tmp_path / "userpkg")
    line = _assert_one_error_line(
        res,
        "1 of 3 structures failed (frames 1)",
        "metals.extxyz frame 1",
        "flaky calculator refused",
    )
    assert "retries only the failed frames" in line
    summary = json.loads(res.stdout)
    assert (summary["n_total"], summary["n_labelled"], summary["n_failed"]) == (3, 2, 1)
    assert _count_rows(tmp_path / "labels.db") == 2


def test_cli_resume_after_kill9(tmp_path):
    from tblite.ase import TBLite

    frames = _water_clusters(40)
    n = len(frames)
    ase.io.write(tmp_path / "structs.extxyz", frames)
    db = tmp_path / "labels.db"
    args = ["structs.extxyz", "--calc", "xtb", "--db", "labels.db", "--json"]
    proc = subprocess.Popen(
        _cli_args(*args, "--workers", "1"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if _count_rows(db) >= 3:
                break
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()
    for _ in range(200):  # the whole process group (Dask workers too) is gone
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("dask worker processes survived kill -9 of their group")
    k = _count_rows(db)
    print(f"kill -9 landed after {k} of {n} rows")
    assert 3 <= k < n, f"kill landed after {k} of {n} rows"

    # a lock file left by a killed ASE writer (ase.db's default) must not block the rerun
    (tmp_path / "labels.db.lock").touch()
    res = _run_cli(*args, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["n_cached"] == k and summary["n_labelled"] == n - k
    assert summary["n_failed"] == 0

    spec = LabellerSpec("xtb")
    hashes = {
        structure_hash(a, extra=spec.key()) for a in ase.io.read(tmp_path / "structs.extxyz", ":")
    }
    stored = LabelDB(db).to_frames()
    assert _count_rows(db) == len(stored) == len(hashes) == n
    assert {a.info["structure_hash"] for a in stored} == hashes
    for i in (0, k - 1, n - 1):  # before the kill, at it, and after the resume
        ref = frames[i].copy()
        ref.calc = TBLite(method="GFN2-xTB", verbosity=0)
        assert stored[i].get_potential_energy() == pytest.approx(
            ref.get_potential_energy(), abs=1e-5
        )
        np.testing.assert_allclose(stored[i].get_forces(), ref.get_forces(), atol=1e-4)


def test_label_now_matches_the_calculator_and_leaves_the_input_alone():
    from ase.build import bulk as _bulk
    from ase.calculators.emt import EMT as _EMT

    from common.labels import label_now

    a = _bulk("Cu", "fcc", a=3.6, cubic=True)
    a.rattle(0.05, seed=3)
    before = a.positions.copy()
    lab = label_now(a, "emt")
    ref = a.copy()
    ref.calc = _EMT()
    assert lab.get_potential_energy() == pytest.approx(ref.get_potential_energy(), abs=1e-12)
    np.testing.assert_allclose(lab.get_forces(), ref.get_forces(), atol=1e-12)
    np.testing.assert_allclose(lab.get_stress(), ref.get_stress(), atol=1e-12)
    assert a.calc is None and np.array_equal(a.positions, before)
