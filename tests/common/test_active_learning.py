"""common.active_learning: selection, and the resumable loop (real kill -9 in a subprocess).

The fake domain is pure Python on H2 dimers: the "committee" is the list of trained bond
lengths, its deviation on a frame grows with the distance to the nearest trained length, and
the reference is a Morse potential (frames beyond 2.2 Å fail to label, as a real reference
sometimes does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ase import Atoms

from common.active_learning import DEVIATION_KEY, ActiveLearning, select_candidates
from common.errors import ConfigError
from common.fileio import atomic_write_json

REPO = Path(__file__).resolve().parents[2]
LO, HI, MAX_NEW, ROUNDS = 0.05, 1.0, 3, 4


def dimer(d: float) -> Atoms:
    return Atoms("H2", positions=[[0, 0, 0], [d, 0, 0]], cell=[10, 10, 10])


def morse(d: float) -> tuple[float, np.ndarray]:
    """Energy (eV) and forces (eV/Å) of a Morse H2 (De 4.7 eV, a 1.9 /Å, re 0.74 Å)."""
    x = np.exp(-1.9 * (d - 0.74))
    e = 4.7 * (1 - x) ** 2 - 4.7
    de_dd = 2 * 4.7 * (1 - x) * 1.9 * x
    f = np.array([[de_dd, 0, 0], [-de_dd, 0, 0]])
    return e, f


def labelled(d: float) -> Atoms:
    from ase.calculators.singlepoint import SinglePointCalculator

    a = dimer(d)
    e, f = morse(d)
    a.calc = SinglePointCalculator(a, energy=e, forces=f)
    return a


def bond(a: Atoms) -> float:
    return float(a.get_distance(0, 1))


class FakeDomain:
    """train / load / explore / label of the fake; every call is logged to ``log``."""

    def __init__(self, log: Path, kill: tuple | None = None):
        self.log, self.kill = log, kill

    def _note(self, what: str, r: int | str) -> None:
        with open(self.log, "a") as fh:
            fh.write(f"{what} {r}\n")
        if self.kill == (what, r):
            os.kill(os.getpid(), 9)

    def train(self, frames, folder, r):
        self._note("train", r)
        model = sorted(round(bond(a), 6) for a in frames)
        energies = [a.get_potential_energy() for a in frames]
        atomic_write_json(Path(folder) / "model.json", model)
        self._note("train-saved", r)
        return model, {"n": len(model), "mean_energy_eV": float(np.mean(energies))}

    def load(self, folder, r):
        self._note("load", r)
        return json.loads((Path(folder) / "model.json").read_text())

    def explore(self, model, folder, r):
        self._note("explore", r)
        out = []
        for d in np.linspace(0.6, 2.4, 37):
            a = dimer(d)
            a.info[DEVIATION_KEY] = 2.0 * min(abs(d - m) for m in model)
            out.append(a)
        return out

    def label(self, frames):
        self._note("label", len(frames))
        return [labelled(bond(a)) for a in frames if bond(a) <= 2.2]

    def on_stage(self, r, stage, info):
        if self.kill == ("after", f"{stage} {r}"):
            os.kill(os.getpid(), 9)


def make_loop(workdir: Path, domain: FakeDomain, **kw) -> ActiveLearning:
    initial = [labelled(d) for d in (0.7, 0.75, 0.8)]
    settings = {"lo": LO, "hi": HI, "max_new": MAX_NEW, **kw}
    return ActiveLearning(workdir, initial, train=domain.train, load=domain.load,
                          explore=domain.explore, label=domain.label,
                          on_stage=domain.on_stage, **settings)


def main(workdir: str, kill: str) -> None:
    """Subprocess entry: run the loop, SIGKILLing itself at ``kill`` (``what:round``)."""
    what, _, r = kill.partition(":")
    domain = FakeDomain(Path(workdir) / "calls.log",
                        (what, int(r) if r.isdigit() else r) if kill else None)
    if what == "written":  # killed after a file is whole but before its stage is recorded
        import common.active_learning as al

        write = al._write_frames

        def write_then_die(path, frames):
            write(path, frames)
            if path.name == r:
                os.kill(os.getpid(), 9)

        al._write_frames = write_then_die
    make_loop(Path(workdir), domain).run(ROUNDS)


def run_subprocess(workdir: Path, kill: str = "") -> int:
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import test_active_learning as t; t.main({str(workdir)!r}, {kill!r})")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          timeout=120).returncode


def summary(result) -> dict:
    return {"rounds": result.rounds, "model": result.model, "metrics": result.metrics,
            "history": result.history,
            "data": [(round(bond(a), 6), round(a.get_potential_energy(), 6))
                     for a in result.data]}


# ---------------------------------------------------------------------------------- tests


def test_select_candidates_trust_window_and_spread():
    frames = [dimer(1.0) for _ in range(10)]
    for k, a in enumerate(frames):
        a.info[DEVIATION_KEY] = 0.1 * k
    picked, counts = select_candidates(frames, 0.2, 0.8, 3)
    assert counts == {"accurate": 2, "candidate": 6, "failed": 2}
    assert [round(a.info[DEVIATION_KEY], 1) for a in picked] == [0.2, 0.4, 0.7]


def test_loop_records_rounds_and_reruns_without_work(tmp_path):
    log = tmp_path / "calls.log"
    result = make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS)
    assert result.rounds == ROUNDS
    n_new = [h["n_labelled"] for h in result.history]
    assert len(result.data) == 3 + sum(n_new) and min(n_new) > 0
    assert [h["n_train"] for h in result.history] == list(3 + np.cumsum([0] + n_new[:-1]))
    assert any(h["n_selected"] > h["n_labelled"] for h in result.history)  # a label failed
    distances = [bond(a) for a in result.data]
    assert len(set(np.round(distances, 6))) == len(distances)
    for r in range(ROUNDS):
        assert list(make_loop(tmp_path / "al", FakeDomain(log)).state(r)) == [
            "trained", "explored", "selected", "labelled", "merged"]
    calls = log.read_text().split("\n")
    again = make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS)
    new_calls = [c for c in log.read_text().split("\n")[len(calls) - 1:] if c]
    assert new_calls == [f"load {ROUNDS}"]  # a finished run only loads its last model
    assert summary(again) == summary(result)


def test_kill_9_at_any_stage_then_rerun_gives_the_uninterrupted_result(tmp_path):
    reference = summary(make_loop(tmp_path / "ref", FakeDomain(tmp_path / "ref.log")).run(ROUNDS))
    work = tmp_path / "al"
    kills = ["label:3",                     # inside labelling of round 0 (3 frames selected)
             "written:labelled.extxyz",     # round 0's labels whole on disk, stage not recorded
             "train-saved:1",               # model saved, "trained" not yet recorded
             "after:selected 1",            # between two recorded stages
             "explore:2",
             "after:merged 2",
             "train:4"]                     # inside the final training
    for kill in kills:
        assert run_subprocess(work, kill) == -9, kill
    assert run_subprocess(work) == 0
    result = make_loop(work, FakeDomain(tmp_path / "after.log")).run(ROUNDS)
    assert summary(result) == reference
    calls = (work / "calls.log").read_text().split()
    pairs = list(zip(calls[::2], calls[1::2], strict=True))
    assert pairs.count(("train", "0")) == 1  # finished before the first kill: loaded since
    assert pairs.count(("train", "4")) == 2  # killed once inside, then done again
    labelled_frames = [bond(a) for a in result.data]
    assert len(set(np.round(labelled_frames, 6))) == len(labelled_frames)  # no duplicate


def test_converged_round_stops_and_final_training_only(tmp_path):
    log = tmp_path / "calls.log"
    domain = FakeDomain(log)
    loop = make_loop(tmp_path / "al", domain, lo=5.0, hi=6.0)  # nothing is a candidate
    result = loop.run(ROUNDS)
    assert result.rounds == 0 and len(result.data) == 3
    assert result.history[0]["n_selected"] == 0 and loop.state(0)["merged"]["n_train_next"] == 3
    assert result.converged and result.stopped == "round 0's exploration found nothing to label"
    # candidates whose labels all fail: the loop stops too, but has not converged
    failing = FakeDomain(log)
    failing.label = lambda frames: []
    stuck = make_loop(tmp_path / "stuck", failing).run(ROUNDS)
    assert stuck.rounds == 0 and not stuck.converged
    assert "candidates gave no new training frames" in stuck.stopped
    zero = make_loop(tmp_path / "zero", domain).run(0)
    assert zero.rounds == 0 and zero.history == []


def test_other_settings_are_refused(tmp_path):
    make_loop(tmp_path / "al", FakeDomain(tmp_path / "log")).run(0)
    with pytest.raises(ConfigError, match="other settings"):
        make_loop(tmp_path / "al", FakeDomain(tmp_path / "log"), max_new=7).run(0)
    with pytest.raises(ConfigError, match="lo < hi"):
        make_loop(tmp_path / "x", FakeDomain(tmp_path / "log"), lo=1.0, hi=0.5)


def test_accurate_fraction_stops_the_loop_and_a_rerun_only_loads(tmp_path):
    # 37 explored dimers; a trained length makes the frame at that length accurate (deviation
    # 0 < lo) and each round adds MAX_NEW = 3 trained lengths, so the accurate fraction of
    # round r is (3 + 3 r) / 37: 0.081, 0.162, 0.243, ...
    log = tmp_path / "calls.log"
    result = make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS, accurate_fraction=0.15)
    fractions = [h["accurate_fraction"] for h in result.history]
    assert fractions == pytest.approx([3 / 37, 6 / 37])
    assert result.rounds == 2 and result.converged
    assert "round 1" in result.stopped and "0.162" in result.stopped
    assert len(result.data) == 3 + sum(h["n_labelled"] for h in result.history)
    calls = log.read_text().split("\n")
    again = make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS, accurate_fraction=0.15)
    new_calls = [c for c in log.read_text().split("\n")[len(calls) - 1:] if c]
    assert new_calls == ["load 2"] and summary(again) == summary(result)
    assert again.stopped == result.stopped
    # without the threshold the same folder goes on to the rounds asked for
    more = make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS)
    assert more.rounds == ROUNDS and not more.converged and more.stopped == f"{ROUNDS} rounds done"
    with pytest.raises(ConfigError, match="accurate_fraction"):
        make_loop(tmp_path / "al", FakeDomain(log)).run(ROUNDS, accurate_fraction=1.5)
