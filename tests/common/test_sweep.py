"""common.sweep: results persisted at once, reruns skip finished tasks, failures retried.

The LocalCluster tests use real worker processes; the task functions below are pickled by value
(this test module is not importable by name in the workers under --import-mode=importlib).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cloudpickle
import numpy as np
import pytest

from common.errors import ConfigError
from common.sweep import JsonDirStore, SweepReport, Task, run_tasks

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def record_and_square(x: int, marks: str) -> dict:
    """Square ``x``; leaves one file per execution in ``marks`` so tests count executions."""
    import os
    import uuid
    from pathlib import Path

    Path(marks, f"run-{x}-{uuid.uuid4().hex}").touch()
    return {"x": x, "square": x * x, "pid": os.getpid()}


def fail_while_flag(x: int, marks: str, flag: str) -> dict:
    """Raise (two-line message) while the file ``flag`` exists; succeed once it is gone."""
    import os
    import uuid
    from pathlib import Path

    Path(marks, f"run-{x}-{uuid.uuid4().hex}").touch()
    if os.path.exists(flag):
        raise RuntimeError(f"task {x} failed on purpose\nsecond line that must not show")
    return {"x": x, "square": x * x, "pid": os.getpid()}


def thread_settings() -> dict:
    """What a worker sees: torch's intra-op threads and the OpenMP variable."""
    import os

    import torch

    return {
        "torch_threads": torch.get_num_threads(),
        "omp": os.environ.get("OMP_NUM_THREADS"),
        "mkl": os.environ.get("MKL_NUM_THREADS"),
        "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
        "pid": os.getpid(),
    }


def _executions(marks: Path) -> dict[int, int]:
    out: dict[int, int] = {}
    for p in marks.iterdir():
        x = int(p.name.split("-")[1])
        out[x] = out.get(x, 0) + 1
    return out


def _tasks(marks: Path, flag: Path, n: int = 4, failing: int = 99) -> dict:
    tasks: dict = {f"x={i}": (record_and_square, {"x": i, "marks": str(marks)}) for i in range(n)}
    tasks[f"x={failing}"] = (
        fail_while_flag,
        {"x": failing, "marks": str(marks), "flag": str(flag)},
    )
    return tasks


def test_json_dir_store_roundtrip(tmp_path):
    store = JsonDirStore(tmp_path / "res")
    weird = "T=300K/comp=Li:0.5 €"
    long_key = "k" * 400
    store.save(weird, {"a": np.arange(3), "b": np.float64(1.5)})
    store.save(long_key, [1, 2])
    store.save("plain", 7)
    store.save("plain", 8)  # overwrite is atomic (os.replace)
    assert store.done_keys() == {weird, long_key, "plain"}
    assert store.load(weird) == {"a": [0, 1, 2], "b": 1.5}
    assert store.load("plain") == 8
    assert store.results()[long_key] == [1, 2]
    assert not [p for p in (tmp_path / "res").iterdir() if p.name.startswith(".tmp-")]
    with pytest.raises(KeyError):
        store.load("missing")
    # a fresh object over the same folder sees the same keys (it is the on-disk state)
    assert JsonDirStore(tmp_path / "res").done_keys() == store.done_keys()


def test_serial_persists_skips_and_retries(tmp_path):
    marks, flag = tmp_path / "marks", tmp_path / "fail.flag"
    marks.mkdir()
    flag.touch()
    store = JsonDirStore(tmp_path / "res")

    rep = run_tasks(_tasks(marks, flag), store, cluster="serial", progress=False)
    assert (rep.n_total, rep.n_skipped, rep.n_done, rep.n_failed) == (5, 0, 4, 1)
    assert rep.failures == {"x=99": "RuntimeError: task 99 failed on purpose"}
    assert store.done_keys() == {f"x={i}" for i in range(4)}  # the failure is not saved
    assert store.load("x=3")["square"] == 9
    assert store.load("x=3")["pid"] == os.getpid()  # serial runs in this process

    # rerun while the failure persists: only the failed task runs again
    rep = run_tasks(_tasks(marks, flag), store, cluster="serial", progress=False)
    assert (rep.n_skipped, rep.n_done, rep.n_failed) == (4, 0, 1)
    assert _executions(marks) == {0: 1, 1: 1, 2: 1, 3: 1, 99: 2}

    # fixed: the rerun retries it and it is saved; a further rerun executes nothing
    flag.unlink()
    rep = run_tasks(_tasks(marks, flag), store, cluster="serial", progress=False)
    assert (rep.n_skipped, rep.n_done, rep.n_failed) == (4, 1, 0)
    rep = run_tasks(_tasks(marks, flag), store, cluster="serial", progress=False)
    assert rep == SweepReport(n_total=5, n_skipped=5, n_done=0, n_failed=0, failures={})
    assert _executions(marks) == {0: 1, 1: 1, 2: 1, 3: 1, 99: 3}


def test_task_list_form_and_duplicate_keys(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    store = JsonDirStore(tmp_path / "res")
    tasks = [Task(f"t{i}", record_and_square, {"x": i, "marks": str(marks)}) for i in range(3)]
    rep = run_tasks(tasks, store, cluster="serial", progress=False)
    assert rep.n_done == 3
    with pytest.raises(ValueError, match="duplicate task key"):
        run_tasks(tasks + tasks[:1], store, cluster="serial", progress=False)


def test_local_cluster_persists_skips_retries_and_sets_threads(tmp_path):
    marks, flag = tmp_path / "marks", tmp_path / "fail.flag"
    marks.mkdir()
    flag.touch()
    store = JsonDirStore(tmp_path / "res")
    tasks = _tasks(marks, flag)
    tasks["threads"] = (thread_settings, {})
    omp_before = os.environ.get("OMP_NUM_THREADS")

    rep = run_tasks(tasks, store, n_workers=2, progress=False)
    assert (rep.n_total, rep.n_skipped, rep.n_done, rep.n_failed) == (6, 0, 5, 1)
    assert rep.failures == {"x=99": "RuntimeError: task 99 failed on purpose"}
    res = store.results()
    assert {res[f"x={i}"]["square"] for i in range(4)} == {0, 1, 4, 9}
    pids = {res[f"x={i}"]["pid"] for i in range(4)} | {res["threads"]["pid"]}
    assert os.getpid() not in pids  # ran in worker processes
    assert res["threads"]["torch_threads"] == 1
    assert res["threads"]["omp"] == res["threads"]["mkl"] == res["threads"]["openblas"] == "1"
    assert os.environ.get("OMP_NUM_THREADS") == omp_before  # this process is left as it was

    # the rerun retries only the failed task; with 2 threads per task the 2-core machine gets
    # one worker, and torch/OpenMP in it really use 2 threads
    flag.unlink()
    tasks["threads2"] = (thread_settings, {})
    rep = run_tasks(tasks, store, threads_per_worker=2, progress=False)
    assert (rep.n_skipped, rep.n_done, rep.n_failed) == (5, 2, 0)
    assert _executions(marks) == {0: 1, 1: 1, 2: 1, 3: 1, 99: 2}
    got = store.load("threads2")
    assert got["torch_threads"] == 2 and got["omp"] == got["openblas"] == "2"
    assert os.environ.get("OMP_NUM_THREADS") == omp_before

    rep = run_tasks(tasks, store, n_workers=2, progress=False)  # nothing left: no cluster
    assert (rep.n_skipped, rep.n_done) == (7, 0)
    assert _executions(marks) == {0: 1, 1: 1, 2: 1, 3: 1, 99: 2}


def test_scheduler_address(tmp_path):
    """cluster="tcp://host:port" connects to a running scheduler and leaves it running."""
    from distributed import LocalCluster

    marks = tmp_path / "marks"
    marks.mkdir()
    store = JsonDirStore(tmp_path / "res")
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as lc:
        tasks = {f"x={i}": (record_and_square, {"x": i, "marks": str(marks)}) for i in range(3)}
        rep = run_tasks(tasks, store, cluster=lc.scheduler_address, progress=False)
        assert (rep.n_done, rep.n_failed) == (3, 0)
        assert lc.status.name == "running"  # not closed by run_tasks
    assert {r["pid"] for r in store.results().values()} - {os.getpid()}
    assert _executions(marks) == {0: 1, 1: 1, 2: 1}


def test_cluster_option_errors(tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    store = JsonDirStore(tmp_path / "res")
    tasks = {"a": (record_and_square, {"x": 1, "marks": str(marks)})}
    with pytest.raises(ConfigError, match="unknown cluster 'nonsense'"):
        run_tasks(tasks, store, cluster="nonsense", progress=False)
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError, match="cluster file not found"):
        run_tasks(tasks, store, cluster=missing, progress=False)
    conf = tmp_path / "slurm.yaml"
    conf.write_text("system: lsfx\ncores: 4\n")
    with pytest.raises(ConfigError, match="system 'lsfx' is not one of"):
        run_tasks(tasks, store, cluster=conf, progress=False)
    conf.write_text(
        json.dumps(
            {"system": "slurm", "cores": 4, "memory": "8GB", "walltime": "01:00:00", "jobs": 2}
        )
    )
    try:
        import dask_jobqueue  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigError, match="pip install dask-jobqueue"):
            run_tasks(tasks, store, cluster=conf, progress=False)
    with pytest.raises(ConfigError, match="threads_per_worker"):
        run_tasks(tasks, store, threads_per_worker=0, progress=False)
    assert not list(marks.iterdir())  # nothing ran
