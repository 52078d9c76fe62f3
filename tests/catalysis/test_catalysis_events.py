"""Catalysis events on synthetic Cu(111) trajectories with planted reactions (known answers)."""

from __future__ import annotations

import json

import ase.io
import numpy as np
import pytest
import typer
from ase import Atoms
from ase.build import fcc111

from catalysis.cli_events import events as events_command
from catalysis.events import analyze_trajectories, classify_pathway
from common.cli.app import run_app
from common.errors import ConfigError, DataError
from common.trajectory import frame_times_fs, load_trajectory

NX, NY = 6, 4
DT_FS = 10.0
N_FRAMES = 60
SLAB = fcc111("Cu", size=(NX, NY, 2), vacuum=8.0)
SLAB.info.clear()
TOP = [a.index for a in SLAB if a.tag == 1]
Z_TOP = SLAB.positions[TOP[0], 2]
X = np.array([1.0, 0.0, 0.0])
Y = np.array([0.0, 1.0, 0.0])
Z = np.array([0.0, 0.0, 1.0])


def site(r: int, c: int) -> np.ndarray:
    """Position of the top-layer Cu atom in row r, column c (periodic)."""
    p = SLAB.positions[TOP[(r % NY) * NX + (c % NX)]].copy()
    if c >= NX:  # continue the row across the boundary (unwrapped)
        p += SLAB.cell[0]
    return p


def pair_geometry(sa: np.ndarray, sb: np.ndarray, n_h: tuple[int, int], dcc: float | None
                  ) -> tuple[list[str], np.ndarray]:
    """Two C1 species (CO / CHO / CH2O) on top sites sa, sb; coupled with C-C = dcc if given.

    Order of atoms: C_a, O_a, H_a..., C_b, O_b, H_b...
    """
    u = (sb - sa) / np.linalg.norm(sb - sa)
    perp = np.cross(Z, u)
    if dcc is None:
        ca, cb = sa + 1.85 * Z, sb + 1.85 * Z
        oa, ob = ca + 1.15 * Z, cb + 1.15 * Z
    else:
        mid = 0.5 * (sa + sb)
        ca, cb = mid - 0.5 * dcc * u + 1.9 * Z, mid + 0.5 * dcc * u + 1.9 * Z
        oa, ob = ca - 0.6 * u + 1.0 * Z, cb + 0.6 * u + 1.0 * Z
    symbols: list[str] = []
    pos: list[np.ndarray] = []
    for c, o, nh in ((ca, oa, n_h[0]), (cb, ob, n_h[1])):
        symbols += ["C", "O"] + ["H"] * nh
        pos += [c, o] + [c + s * 1.1 * perp for s in (1, -1)[:nh]]
    return symbols, np.array(pos)


class Scene:
    """A Cu slab plus actors; each actor gives (symbols, positions) for every frame."""

    def __init__(self) -> None:
        self.actors = []

    def add(self, fn) -> None:
        self.actors.append(fn)

    def frames(self, n: int = N_FRAMES, seed: int = 0, jiggle: float = 0.01) -> list[Atoms]:
        rng = np.random.default_rng(seed)
        out = []
        for k in range(n):
            syms = list(SLAB.get_chemical_symbols())
            pos = [SLAB.positions]
            for fn in self.actors:
                s, p = fn(k)
                syms += s
                pos.append(p)
            p = np.concatenate(pos)
            p = p + rng.normal(0.0, jiggle, p.shape)
            a = Atoms(syms, positions=p, cell=SLAB.cell, pbc=SLAB.pbc)
            a.wrap()
            a.info["time_fs"] = k * DT_FS
            out.append(a)
        return out


def coupling(sa, sb, n_h, at, dcc=1.55):
    return lambda k: pair_geometry(sa, sb, n_h, dcc if k >= at else None)


def hydrogenation(sa, sb, at_h, at_c, hollow):
    """*CO(a) + *CO(b); *H at `hollow` hops onto C_b at frame at_h; C-C coupling at at_c."""
    def fn(k):
        s, p = pair_geometry(sa, sb, (0, 1), 1.55 if k >= at_c else None)
        if k < at_h:
            p[-1] = hollow
        return s, p
    return fn


def hollow_site(r: int, c: int) -> np.ndarray:
    return (site(r, c) + site(r, c + 1) + site(r + 1, c)) / 3 + 1.0 * Z


def trajectory_1() -> list[Atoms]:
    """A at frame 20 (row 0), *CO + *H -> *CHO at 10 and B at 30 (row 2)."""
    sc = Scene()
    sc.add(coupling(site(0, 0), site(0, 1), (0, 0), at=20))
    sc.add(hydrogenation(site(2, 3), site(2, 4), at_h=10, at_c=30, hollow=hollow_site(1, 4)))
    return sc.frames(seed=1)


def trajectory_2() -> list[Atoms]:
    """C and 'other' at frame 25 (independent), a brief dip and a jitter that are no events."""
    sc = Scene()
    sc.add(coupling(site(0, 0), site(0, 1), (0, 2), at=25))     # *CO + *CH2O -> C
    sc.add(coupling(site(0, 3), site(0, 4), (1, 1), at=25))     # *CHO + *CHO -> other

    def dip(k):  # in-band jitter at 10..29, below r_on for 2 frames at 40-41
        if 10 <= k < 30:
            return pair_geometry(site(2, 0), site(2, 1), (0, 0), 1.9 if k % 2 else 2.1)
        return pair_geometry(site(2, 0), site(2, 1), (0, 0), 1.6 if k in (40, 41) else None)

    def jitter(k):  # crosses both thresholds every frame from 10 to 50
        if 10 <= k < 50:
            return pair_geometry(site(2, 3), site(2, 4), (0, 0), 1.7 if k % 2 else 2.3)
        return pair_geometry(site(2, 3), site(2, 4), (0, 0), None)

    sc.add(dip)
    sc.add(jitter)
    return sc.frames(seed=2)


@pytest.fixture(scope="module")
def trajs():
    return trajectory_1(), trajectory_2()


@pytest.fixture(scope="module")
def result(trajs):
    return analyze_trajectories(list(trajs))


def _key(ev: dict) -> tuple:
    return (ev["trajectory"], ev["frame"], tuple(ev["reactants"]), tuple(ev["products"]),
            ev["pathway"])


def test_planted_events_and_pathways(result):
    d = result.to_dict()
    got = sorted(_key(e) for e in d["events"])
    assert got == sorted([
        ("frames[0]", 10, ("*CO", "*H"), ("*CHO",), None),
        ("frames[0]", 20, ("*CO", "*CO"), ("*OCCO",), "A"),
        ("frames[0]", 30, ("*CHO", "*CO"), ("*OCCHO",), "B"),
        ("frames[1]", 25, ("*CH2O", "*CO"), ("*OCCH2O",), "C"),
        ("frames[1]", 25, ("*CHO", "*CHO"), ("*OCHCHO",), "other"),
    ])
    a = next(e for e in d["events"] if e["pathway"] == "A")
    assert a["time_ps"] == pytest.approx(0.2)
    for k in ("A", "B", "C", "other"):
        p = d["pathways"][k]
        assert p["count"] == 1 and p["fraction"] == pytest.approx(0.25)
        assert p["ci95"][0] < 0.25 < p["ci95"][1]
    assert d["n_frames"] == 2 * N_FRAMES and d["dt_fs"] == pytest.approx(DT_FS)
    assert {"reactants": ["*CO", "*CO"], "products": ["*OCCO"], "count": 1} in d["network"]
    assert sum(e["count"] for e in d["network"]) == 5
    json.dumps(d)  # JSON-ready


def test_lifetimes_as_planted(result):
    life = result.to_dict()["lifetimes"]
    # *CHO born at frame 10, coupled at frame 30: 20 frames x 10 fs
    assert life["*CHO"] == {"n": 1, "mean_ps": pytest.approx(0.2), "ci95_ps": [None, None]}
    assert life["*OCCO"]["n"] == 0  # alive at the end: censored
    stats = result.lifetimes()
    assert stats["*OCCO"].n_censored == 1
    assert "*H" not in life  # present from frame 0: birth unknown


def test_sites(result):
    sites = result.site_counts()
    assert set(sites["*H"]) == {"hollow"}
    assert set(sites["*CO"]) == {"top"}


def test_bridge_site():
    sc = Scene()
    a, b = site(1, 2), site(1, 3)
    sc.add(lambda k: (["C", "O"], np.array([0.5 * (a + b) + 1.5 * Z, 0.5 * (a + b) + 2.7 * Z])))
    res = analyze_trajectories(sc.frames(n=5), include_initial=True)
    assert res.site_counts() == {"*CO": {"bridge": 1}}
    assert res.to_dict()["lifetimes"]["*CO"]["n"] == 0  # censored at the end


def test_desorption_and_gas_phase():
    a = site(1, 2)
    co = [a + 1.85 * Z, a + 3.0 * Z]
    sc = Scene()
    sc.add(lambda k: (["C", "O"], np.array(co) + (0 if k < 15 else 4.0) * Z))
    d = analyze_trajectories(sc.frames(n=30)).to_dict()
    assert [(e["frame"], e["reactants"], e["products"], e["pathway"]) for e in d["events"]] == [
        (15, ["*CO"], ["CO"], None)]
    sc = Scene()
    sc.add(lambda k: (["C", "O"], np.array(co) + 5.0 * Z))
    d = analyze_trajectories(sc.frames(n=5)).to_dict()
    assert d["events"] == [] and d["network"] == []


def test_permuted_atom_order_gives_same_answer(trajs, result):
    rng = np.random.default_rng(7)
    perm = rng.permutation(len(trajs[0][0]))
    permuted = [a[perm] for a in trajs[0]]
    ref = result.to_dict()
    new = analyze_trajectories([permuted, trajs[1]]).to_dict()
    assert sorted(map(_key, new["events"])) == sorted(map(_key, ref["events"]))
    assert new["lifetimes"] == ref["lifetimes"]
    assert new["pathways"] == ref["pathways"]


def test_coupling_across_periodic_boundary():
    sc = Scene()
    sc.add(coupling(site(1, NX - 1), site(1, NX), (0, 0), at=12))  # straddles x boundary
    frames = sc.frames(n=30, seed=3)
    xs = frames[-1].positions[-4:, 0]
    assert xs.max() - xs.min() > 5.0  # atoms really are wrapped apart
    d = analyze_trajectories(frames).to_dict()
    assert [(e["frame"], e["pathway"]) for e in d["events"]] == [(12, "A")]


def test_persistence_option_and_no_filter_sees_jitter(trajs):
    d = analyze_trajectories(trajs[1], min_persistence_frames=1).to_dict()
    # without filtering every crossing of both thresholds is an event: 20 jitter + 1 dip
    # couplings (the in-band jitter 1.9 <-> 2.1 A makes none, thanks to hysteresis)
    net = {(tuple(e["reactants"]), tuple(e["products"])): e["count"] for e in d["network"]}
    assert net[(("*CO", "*CO"), ("*OCCO",))] == 21
    assert net[(("*OCCO",), ("*CO", "*CO"))] == 21
    assert len(d["events"]) == 44


def test_classify_pathway():
    assert classify_pathway(["*CO", "*CO"], ["*OCCO"]) == "A"
    assert classify_pathway(["*CHO", "*CO"], ["*OCCHO"]) == "B"
    assert classify_pathway(["*CO", "*CH2O"], ["*OCCH2O"]) == "C"
    assert classify_pathway(["CO", "*CO"], ["*OCCO"]) == "other"  # Eley-Rideal
    assert classify_pathway(["*CO", "*CO"], ["*CCO", "*O"]) == "other"


def test_errors():
    only_cu = [SLAB.copy() for _ in range(3)]
    with pytest.raises(DataError, match="no adsorbate atoms"):
        analyze_trajectories(only_cu, dt_fs=10)
    frames = trajectory_1()[:5]
    for a in frames:
        a.info.clear()
    with pytest.raises(DataError, match="no time step"):
        analyze_trajectories(frames)
    with pytest.raises(ConfigError):
        analyze_trajectories(frames, dt_fs=-1)
    with pytest.raises(DataError, match="no Pt atoms"):
        analyze_trajectories(frames, dt_fs=10, metal="Pt")
    with pytest.raises(DataError, match="file not found"):
        analyze_trajectories(["/nonexistent/traj.xyz"])


def test_times_from_ase_md_traj(tmp_path):
    from ase import units
    from ase.io.trajectory import Trajectory

    frames = trajectory_1()[:3]
    path = tmp_path / "md.traj"
    with Trajectory(str(path), "w") as tr:
        tr.set_description({"type": "molecular-dynamics", "timestep": 2.5 * units.fs,
                            "interval": 4})
        for a in frames:
            a = a.copy()
            a.info.clear()
            tr.write(a)
    got, dt = load_trajectory(path)
    assert dt == pytest.approx(10.0)
    assert frame_times_fs(got, None, dt) == pytest.approx([0.0, 10.0, 20.0])


# --------------------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(events_command)
    return app


def test_cli_json_and_plot(trajs, tmp_path, capsys):
    p1, p2 = tmp_path / "t1.extxyz", tmp_path / "t2.extxyz"
    ase.io.write(p1, trajs[0])
    ase.io.write(p2, trajs[1])
    fig = tmp_path / "timeline.png"
    rc = run_app(_app(), [str(p1), str(p2), "--json", "--plot", str(fig)])
    out = capsys.readouterr().out
    assert rc == 0
    d = json.loads(out)
    assert set(d) == {"events", "pathways", "lifetimes", "network", "n_frames", "dt_fs"}
    assert {k: v["count"] for k, v in d["pathways"].items()} == {"A": 1, "B": 1, "C": 1,
                                                                 "other": 1}
    assert set(d["events"][0]) == {"trajectory", "frame", "time_ps", "reactants", "products",
                                   "pathway"}
    assert d["events"][0]["trajectory"] == str(p1)
    assert d["lifetimes"]["*CHO"]["mean_ps"] == pytest.approx(0.2)
    assert fig.stat().st_size > 1000
    # plain-text tables
    rc = run_app(_app(), [str(p1), "--cutoff", "C-C=1.7,2.1", "--cutoff", "C-Cu=2.3,2.6"])
    assert rc == 0 and "pathway" in capsys.readouterr().out


@pytest.mark.parametrize("case", ["no_adsorbate", "unreadable", "bad_cutoff", "no_dt",
                                  "negative_cutoff"])
def test_cli_errors(case, trajs, tmp_path, capsys):
    good = tmp_path / "good.extxyz"
    ase.io.write(good, trajs[0][:6])
    if case == "no_adsorbate":
        path = tmp_path / "cu.extxyz"
        ase.io.write(path, [SLAB] * 3)
        argv = [str(path), "--dt-fs", "10"]
    elif case == "unreadable":
        path = tmp_path / "junk.extxyz"
        path.write_text("this is not\na trajectory\n")
        argv = [str(path), "--dt-fs", "10"]
    elif case == "bad_cutoff":
        argv = [str(good), "--cutoff", "C-C=2.0,1.8"]
    elif case == "negative_cutoff":
        argv = [str(good), "--cutoff", "C-O=-1,2"]
    else:
        path = tmp_path / "notime.extxyz"
        ase.io.write(path, [SLAB + Atoms("CO", positions=[[0, 0, 12], [0, 0, 13.15]])] * 3)
        argv = [str(path)]
    rc = run_app(_app(), argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("error:")
