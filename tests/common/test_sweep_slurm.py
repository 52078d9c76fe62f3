"""Sweeps on a real SLURM: a single-node cluster started by scripts/slurm_single_node.sh.

Needs Debian's slurm-wlm and munge (`.ci/run` installs them when it runs as root with apt) and
root; elsewhere these tests are skipped with the reason. What they check:

* a label sweep (`mlp-cases label --cluster slurm.yaml`) and an MD condition sweep (run_md at
  three temperatures as sweep tasks) give results identical to the local/serial run;
* every batch job cancelled with `scancel` mid-sweep: the sweep ends (it does not hang) with the
  unfinished tasks named, and a rerun runs exactly those, none twice;
* a walltime too short for a task: a clear failure naming the task.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from common.sweep import JsonDirStore, run_tasks

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_single_node.sh"

pytestmark = pytest.mark.slurm
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/


def _why_no_slurm() -> str | None:
    missing = [p for p in ("slurmctld", "slurmd", "munged", "sbatch") if shutil.which(p) is None]
    if missing:
        return (f"SLURM is not installed ({', '.join(missing)} missing): "
                "bash scripts/slurm_single_node.sh install")
    if os.geteuid() != 0:
        return "the single-node SLURM runs its daemons as root"
    return None


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    why = _why_no_slurm()
    if why:
        pytest.skip(why)
    state = tmp_path_factory.mktemp("slurm")
    out = subprocess.run(["bash", str(SCRIPT), "start", str(state)], capture_output=True,
                         text=True, timeout=120)
    if out.returncode != 0:
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], timeout=60)
        pytest.skip(f"single-node SLURM did not start: {out.stderr.strip()[-300:]}")
    old = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(state / "slurm.conf")
    try:
        yield state
    finally:
        subprocess.run(["scancel", "--user", "root"], capture_output=True, timeout=30)
        subprocess.run(["bash", str(SCRIPT), "stop", str(state)], timeout=60)
        if old is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = old


def _cluster_yaml(path: Path, walltime: str = "00:10:00", jobs: int = 2) -> Path:
    path.write_text(
        "system: slurm\ncores: 1\nprocesses: 1\nmemory: 1GB\n"
        f'walltime: "{walltime}"\njobs: {jobs}\nqueue: debug\n'
        f"log_directory: {path.parent / 'worker-logs'}\n")
    return path


def _jobs() -> list[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True,
                         timeout=30)
    return out.stdout.split()


def _wait_jobs_gone(timeout_s: float = 60.0) -> None:
    t0 = time.monotonic()
    while _jobs() and time.monotonic() - t0 < timeout_s:
        time.sleep(0.5)


def test_label_sweep_on_slurm_equals_local(slurm, tmp_path):
    import ase.io
    from ase.build import bulk

    frames = []
    for k in range(8):
        a = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
        a.rattle(0.05, seed=k)
        frames.append(a)
    ase.io.write(tmp_path / "cu.extxyz", frames)
    cfg = _cluster_yaml(tmp_path / "slurm.yaml")
    exe = str(Path(sys.executable).parent / "mlp-cases")
    for db, extra in (("slurm.db", ["--cluster", str(cfg)]), ("serial.db", ["--cluster",
                                                                          "serial"])):
        out = subprocess.run([exe, "label", str(tmp_path / "cu.extxyz"), "--calc", "emt",
                              "--db", str(tmp_path / db), "--json", *extra],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert out.returncode == 0, out.stderr[-1000:]
        assert json.loads(out.stdout)["n_labelled"] == 8
    from common.labels import LabelDB

    a = LabelDB(tmp_path / "slurm.db").to_frames()
    b = LabelDB(tmp_path / "serial.db").to_frames()
    ea = sorted(f.get_potential_energy() for f in a)
    eb = sorted(f.get_potential_energy() for f in b)
    assert ea == eb
    assert any((tmp_path / "worker-logs").iterdir())  # the jobs wrote their logs there
    _wait_jobs_gone()


def _md_condition(temperature_K: float, seed: int) -> dict:
    """One condition of an MD sweep: LJ argon at a temperature (importable by value)."""
    import tempfile

    import torch
    from ase.build import bulk

    from common.md import run_md
    from common.potential import LennardJones

    torch.set_num_threads(1)
    argon = bulk("Ar", "fcc", a=5.30, cubic=True) * (2, 2, 2)
    with tempfile.TemporaryDirectory() as tmp:
        s = run_md([argon], LennardJones(epsilon=0.0104, sigma=3.40, rc=8.0), tmp,
                   steps=300, temperature_K=temperature_K, seed=seed, traj_every=0,
                   progress=False)
    return {"mean_temperature_K": s["mean_temperature_K"]}


def test_md_condition_sweep_on_slurm_equals_serial(slurm, tmp_path):
    tasks = {f"T{t}": (_md_condition, {"temperature_K": float(t), "seed": 3})
             for t in (40, 60, 80)}
    cfg = _cluster_yaml(tmp_path / "slurm.yaml")
    on_slurm = run_tasks(tasks, JsonDirStore(tmp_path / "slurm"), cluster=str(cfg),
                         progress=False)
    serial = run_tasks(tasks, JsonDirStore(tmp_path / "serial"), cluster="serial",
                       progress=False)
    assert on_slurm.ok and serial.ok and on_slurm.n_done == 3
    a, b = JsonDirStore(tmp_path / "slurm").results(), JsonDirStore(tmp_path / "serial").results()
    for key in tasks:
        assert np.allclose(a[key]["mean_temperature_K"], b[key]["mean_temperature_K"],
                           rtol=1e-12), key
    _wait_jobs_gone()


def _sleep_then(seconds: float, value: int) -> int:
    time.sleep(seconds)
    return value


def _cancel_all_jobs_after(delay_s: float) -> None:
    import threading

    def cancel():
        time.sleep(delay_s)
        subprocess.run(["scancel", "--user", "root"], capture_output=True, timeout=30)

    threading.Thread(target=cancel, daemon=True).start()


@pytest.mark.slow
def test_cancelled_jobs_end_the_sweep_and_a_rerun_runs_only_the_missing_tasks(slurm, tmp_path):
    """Six 4-second tasks on two one-worker jobs; every job is cancelled after ~the first
    results. The sweep returns (no hang) with the unfinished tasks failed by name; the rerun
    runs exactly those, and every key is stored once."""
    store = JsonDirStore(tmp_path / "store")
    tasks = {f"t{k}": (_sleep_then, {"seconds": 4.0, "value": k}) for k in range(6)}
    cfg = _cluster_yaml(tmp_path / "slurm.yaml")
    _cancel_all_jobs_after(14.0)
    first = run_tasks(tasks, store, cluster=str(cfg), progress=False)
    assert first.n_failed > 0, "the jobs were cancelled before any task could be left over"
    assert all("batch jobs ended" in why or "did not finish" in why
               for why in first.failures.values()), first.failures
    done_first = set(store.done_keys())
    _wait_jobs_gone()
    second = run_tasks(tasks, store, cluster=str(cfg), progress=False)
    assert second.n_skipped == len(done_first)
    assert second.n_done == len(tasks) - len(done_first) and second.ok
    assert store.results() == {f"t{k}": k for k in range(6)}
    _wait_jobs_gone()


@pytest.mark.slow
def test_walltime_too_short_is_a_failure_naming_the_task(slurm, tmp_path):
    store = JsonDirStore(tmp_path / "store")
    cfg = _cluster_yaml(tmp_path / "slurm.yaml", walltime="00:01:00", jobs=1)
    report = run_tasks({"long": (_sleep_then, {"seconds": 400.0, "value": 1})}, store,
                       cluster=str(cfg), progress=False)
    assert not report.ok and list(report.failures) == ["long"]
    assert "walltime" in report.failures["long"]
    assert "worker-logs" in report.failures["long"]
    _wait_jobs_gone()
