"""Many independent tasks on Dask distributed, each result persisted the moment it finishes.

A sweep is a set of keyed tasks (``key -> (function, kwargs)``) and a :class:`Store`. Tasks whose
key the store already holds are skipped, so a rerun after a crash (or ``kill -9``) only runs what
is missing. Results are gathered in the calling process with ``as_completed`` and saved there, so
the store has exactly one writer. A task that raises is recorded with a one-line message, is not
saved (a rerun retries it) and does not stop the others.

Where the tasks run (``cluster=``):

* ``None``: a :class:`~distributed.LocalCluster` started in-process (worker processes on
  127.0.0.1, no dashboard), ``min(n_pending, cpu_count // threads_per_worker)`` workers, each
  with ``threads_per_worker`` threads for OpenMP/MKL/OpenBLAS/torch (never oversubscribed: two
  2-thread torch jobs on a 2-core machine run 10x slower than two 1-thread jobs);
* ``"serial"``: one after the other in this process (debugging, tests);
* ``"tcp://host:port"``: an existing Dask scheduler;
* a path to a YAML file: a ``dask-jobqueue`` SLURM/PBS cluster (``system: slurm|pbs``, ``cores``,
  ``memory``, ``walltime``, ``jobs``, and any other keyword of the jobqueue cluster class);
* an existing ``distributed.Client`` or cluster object (left open afterwards).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from urllib.parse import quote, unquote

from common.errors import ConfigError, MlpCasesError

__all__ = [
    "JsonDirStore",
    "Store",
    "SweepReport",
    "Task",
    "one_line_error",
    "run_tasks",
]

_THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
_CLUSTER_HELP = (
    "leave --cluster out for a local cluster, or give 'serial', a scheduler address "
    "'tcp://host:port', or a dask-jobqueue YAML file (system: slurm|pbs, cores, memory, "
    "walltime, jobs)"
)


# --------------------------------------------------------------------------------------------
# tasks, stores, report
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """One independent unit of work: ``fn(**kwargs)``, identified by ``key`` in the store.

    ``fn`` must be importable (or picklable by value) in the worker processes.
    """

    key: str
    fn: Callable[..., Any]
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    """Where finished results go; the only writer is the process that calls :func:`run_tasks`."""

    def done_keys(self) -> set[str]:
        """Keys whose result is already stored (these tasks are skipped)."""
        ...

    def save(self, key: str, result: Any) -> None:
        """Persist ``result`` under ``key`` durably before returning."""
        ...


@dataclass
class SweepReport:
    """What a :func:`run_tasks` call did.

    Attributes
    ----------
    n_total : int
        Tasks given.
    n_skipped : int
        Tasks already in the store, not run.
    n_done : int
        Tasks run and saved now.
    n_failed : int
        Tasks that raised (or whose result could not be saved); not saved, retried on rerun.
    failures : dict[str, str]
        ``key -> one-line message`` for each failed task.
    """

    n_total: int
    n_skipped: int
    n_done: int
    n_failed: int
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no task failed."""
        return self.n_failed == 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a plain, JSON-ready dict."""
        return {
            "n_total": self.n_total,
            "n_skipped": self.n_skipped,
            "n_done": self.n_done,
            "n_failed": self.n_failed,
            "failures": dict(self.failures),
        }


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):  # numpy arrays and scalars
        return o.tolist()
    if hasattr(o, "__fspath__"):
        return os.fspath(o)
    if isinstance(o, set | frozenset):
        return sorted(o)
    raise TypeError(f"result holds a {type(o).__name__}, which is not JSON serialisable")


class JsonDirStore:
    """One JSON file per key in ``directory``, each written atomically (temp file + rename).

    File names are the URL-quoted key (keys longer than 150 characters get a hashed name; the
    key is always stored inside the file as well). Results must be JSON serialisable (numpy
    arrays are written as lists).
    """

    _HASHED = "_h_"

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ConfigError(
                "is a file, not a folder",
                where=str(self.directory),
                fix="give a folder path for the sweep results",
            )
        self.directory.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        name = quote(key, safe="-_.=+,@")
        if len(name) > 150 or name.startswith(self._HASHED) or name.startswith("."):
            import hashlib

            name = self._HASHED + hashlib.sha256(key.encode()).hexdigest()[:40]
        return self.directory / f"{name}.json"

    def done_keys(self) -> set[str]:
        """Return the keys with a stored result."""
        keys: set[str] = set()
        for p in self.directory.glob("*.json"):
            if p.name.startswith(self._HASHED):
                try:
                    keys.add(json.loads(p.read_text())["key"])
                except (OSError, ValueError, KeyError):
                    continue
            else:
                keys.add(unquote(p.name[: -len(".json")]))
        return keys

    def save(self, key: str, result: Any) -> None:
        """Store ``result`` under ``key`` atomically (temp file, fsync, rename)."""
        text = json.dumps({"key": key, "result": result}, default=_json_default)
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=self.directory)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def load(self, key: str) -> Any:
        """Return the result stored under ``key`` (KeyError if there is none)."""
        path = self._path(key)
        if not path.exists():
            raise KeyError(key)
        return json.loads(path.read_text())["result"]

    def results(self) -> dict[str, Any]:
        """Every stored ``key -> result``, keys sorted."""
        out = {}
        for p in sorted(self.directory.glob("*.json")):
            if p.name.startswith(".tmp-"):
                continue
            obj = json.loads(p.read_text())
            out[obj["key"]] = obj["result"]
        return dict(sorted(out.items()))

    def __len__(self) -> int:
        return len(self.done_keys())

    def __repr__(self) -> str:
        return f"JsonDirStore({str(self.directory)!r})"


def one_line_error(exc: BaseException) -> str:
    """Return ``exc`` as one line: the :class:`MlpCasesError` text, or ``Type: first line``."""
    if isinstance(exc, MlpCasesError):
        return exc.one_line()
    msg = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {msg[0]}" if msg else type(exc).__name__
    return text


# --------------------------------------------------------------------------------------------
# running in a worker
# --------------------------------------------------------------------------------------------


def _set_torch_threads(threads: int) -> None:
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "set_num_threads"):
        with contextlib.suppress(Exception):
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)


def _run_pickled(payload: bytes, threads: int | None) -> tuple[bool, Any]:
    """Worker side of a distributed task: unpickle ``(fn, kwargs)`` here, then :func:`_run_one`.

    The task travels as cloudpickle bytes because Dask tries plain ``pickle`` first, which
    pickles importable functions by reference and so ignores
    ``cloudpickle.register_pickle_by_value``; and because a task that cannot be unpickled in
    the worker then becomes a recorded failure instead of a worker stuck on a broken stream.
    """
    try:
        import cloudpickle

        fn, kwargs = cloudpickle.loads(payload)
    except Exception as exc:
        return False, f"cannot load the task in the worker ({one_line_error(exc)})"
    return _run_one(fn, kwargs, threads)


def _run_one(
    fn: Callable[..., Any], kwargs: Mapping[str, Any], threads: int | None
) -> tuple[bool, Any]:
    """Run one task: ``(True, result)`` or ``(False, one-line message)``.

    OMP/MKL/OPENBLAS thread counts are set in the worker's environment before it starts; torch
    reads them when it is first imported, and ``torch.set_num_threads`` is applied again here
    when torch is already loaded (torch is not imported just for this: it costs ~2.5 s).
    """
    if threads is not None:
        for name in _THREAD_ENV:
            os.environ[name] = str(threads)
        _set_torch_threads(threads)
    try:
        result = fn(**kwargs)
    except Exception as exc:  # recorded as a failure; the sweep goes on
        return False, one_line_error(exc)
    finally:
        if threads is not None:
            _set_torch_threads(threads)  # a task that imported torch leaves it right for the next
    return True, result


# --------------------------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------------------------


def _normalise_tasks(tasks: Mapping[str, Any] | Iterable[Task]) -> list[Task]:
    out: list[Task] = []
    if isinstance(tasks, Mapping):
        for key, value in tasks.items():
            if isinstance(value, Task):
                out.append(value)
                continue
            if callable(value):
                out.append(Task(str(key), value, {}))
                continue
            fn, kwargs = value
            out.append(Task(str(key), fn, dict(kwargs or {})))
    else:
        for t in tasks:
            if not isinstance(t, Task):
                raise TypeError(f"expected Task objects, got {type(t).__name__}")
            out.append(t)
    seen: set[str] = set()
    for t in out:
        if t.key in seen:
            raise ValueError(f"duplicate task key {t.key!r}: every task needs its own key")
        seen.add(t.key)
    return out


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def run_tasks(
    tasks: Mapping[str, tuple[Callable[..., Any], Mapping[str, Any]]] | Iterable[Task],
    store: Store,
    *,
    cluster: Any = None,
    n_workers: int | None = None,
    threads_per_worker: int = 1,
    progress: bool = True,
    description: str = "tasks",
) -> SweepReport:
    """Run every task whose key ``store`` does not hold yet, saving each result as it finishes.

    Parameters
    ----------
    tasks : mapping or iterable of Task
        ``{key: (fn, kwargs)}`` or ``[Task(key, fn, kwargs), ...]``; keys must be unique.
    store : Store
        Gives ``done_keys()`` (skipped) and ``save(key, result)`` (called in this process).
    cluster : None, "serial", str or path, Client/cluster object
        Where to run; see the module docstring.
    n_workers : int, optional
        Worker processes of the local cluster (default ``min(n_pending, cpus // threads)``).
    threads_per_worker : int
        Threads each task may use (OpenMP, BLAS, torch); the local cluster runs one task per
        worker at a time.
    progress : bool
        Show a rich progress bar on stderr.
    description : str
        Label of the progress bar.

    Returns
    -------
    SweepReport
    """
    if threads_per_worker < 1:
        raise ConfigError(
            f"threads_per_worker must be >= 1, got {threads_per_worker}",
            fix="give a positive number of threads",
        )
    if n_workers is not None and n_workers < 1:
        raise ConfigError(
            f"n_workers must be >= 1, got {n_workers}",
            where="--workers",
            fix="give a positive number of workers, or leave it out",
        )
    all_tasks = _normalise_tasks(tasks)
    done = store.done_keys()
    pending = [t for t in all_tasks if t.key not in done]
    report = SweepReport(
        n_total=len(all_tasks), n_skipped=len(all_tasks) - len(pending), n_done=0, n_failed=0
    )
    if not pending:
        return report

    with _progress_bar(progress, description, len(pending)) as advance:

        def record(key: str, ok: bool, value: Any) -> None:
            if ok:
                try:
                    store.save(key, value)
                except MlpCasesError:
                    raise
                except Exception as exc:
                    ok, value = False, f"could not save the result: {one_line_error(exc)}"
            if ok:
                report.n_done += 1
            else:
                report.n_failed += 1
                report.failures[key] = str(value)
            advance()

        if isinstance(cluster, str) and cluster.strip().lower() == "serial":
            for t in pending:
                ok, value = _run_one(t.fn, t.kwargs, None)
                record(t.key, ok, value)
        else:
            _run_distributed(pending, record, cluster, n_workers, threads_per_worker)
    return report


@contextlib.contextmanager
def _progress_bar(enabled: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    with bar:
        tid = bar.add_task(description, total=total)
        yield lambda: bar.advance(tid)


@contextlib.contextmanager
def _quiet_dask() -> Iterator[None]:
    """Silence Dask's informational logging and warnings in this process while it runs."""
    names = [
        "distributed",
        "distributed.scheduler",
        "distributed.nanny",
        "distributed.worker",
        "distributed.core",
        "distributed.comm",
        "distributed.batched",
        "distributed.client",
        "distributed.deploy",
        "distributed.process",
        "distributed.http.proxy",
        "distributed.utils_perf",
        "tornado",
        "asyncio",
    ]
    saved = {}
    for n in names:
        lg = logging.getLogger(n)
        saved[n] = lg.level
        lg.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for n, level in saved.items():
            logging.getLogger(n).setLevel(level)


@contextlib.contextmanager
def _thread_env(threads: int) -> Iterator[None]:
    """Worker processes get ``threads`` for OMP/MKL/OpenBLAS before they start.

    Dask's Nanny copies its ``pre-spawn-environ`` into this process's ``os.environ`` before
    spawning (so numpy's BLAS in the child sees it at import); the previous values are put back
    here afterwards so the caller's own process is left as it was.
    """
    import dask

    saved = {n: os.environ.get(n) for n in _THREAD_ENV}
    pre = dict(dask.config.get("distributed.nanny.pre-spawn-environ", default={}) or {})
    pre.update({n: threads for n in _THREAD_ENV})
    try:
        with dask.config.set(
            {
                "distributed.nanny.pre-spawn-environ": pre,
                "distributed.admin.system-monitor.gil.enabled": False,
            }
        ):
            yield
    finally:
        for n, v in saved.items():
            if v is None:
                os.environ.pop(n, None)
            else:
                os.environ[n] = v


def _run_distributed(
    pending: list[Task],
    record: Callable[[str, bool, Any], None],
    cluster: Any,
    n_workers: int | None,
    threads: int,
) -> None:
    from distributed import as_completed

    with _quiet_dask(), _thread_env(threads), contextlib.ExitStack() as stack:
        client = _open_client(
            cluster, stack, n_pending=len(pending), n_workers=n_workers, threads=threads
        )
        futures = {}
        try:
            import cloudpickle

            for t in pending:
                try:
                    payload = cloudpickle.dumps((t.fn, dict(t.kwargs)))
                except Exception as exc:
                    record(t.key, False, f"cannot pickle the task ({one_line_error(exc)})")
                    continue
                fut = client.submit(
                    _run_pickled,
                    payload,
                    threads,
                    pure=False,
                    key=f"{_safe_key(t.key)}-{os.urandom(4).hex()}",
                )
                futures[fut] = t.key
            watch = _BatchJobWatch(client)
            pending_futures = as_completed(list(futures), loop=client.loop)
            while not pending_futures.is_empty():
                if not pending_futures.has_ready():
                    stalled = watch.stalled()
                    if stalled:
                        for key in list(futures.values()):
                            record(key, False, f"not finished: {stalled}")
                        break
                    time.sleep(0.2)
                    continue
                for fut in pending_futures.next_batch(block=False):
                    key = futures.pop(fut)
                    if fut.status == "error":
                        exc = fut.exception()
                        record(key, False, f"task did not finish: {one_line_error(exc)}")
                    elif fut.status == "cancelled":
                        record(key, False, "task was cancelled (worker or scheduler went away)")
                    else:
                        ok, value = fut.result()
                        record(key, ok, value)
                    fut.release()
        finally:
            if futures:
                with contextlib.suppress(Exception):
                    client.cancel(list(futures), force=True)


class _BatchJobWatch:
    """Notice when a batch-job cluster has no worker left and none of its jobs is queued or running.

    That is a dask-jobqueue cluster whose jobs hit their walltime, were cancelled (``scancel``) or
    crashed; the sweep then ends with the unfinished tasks named instead of waiting forever.
    Jobs still waiting in the queue keep the sweep waiting. Other clusters are never stalled
    (a local cluster restarts its workers; an external scheduler's workers are the user's).
    """

    #: seconds without any worker before the batch jobs are asked about
    GRACE_S = 10.0
    #: seconds between two checks
    EVERY_S = 2.0

    def __init__(self, client: Any):
        cluster = getattr(client, "cluster", None)
        self.client = client
        self.cluster = cluster if hasattr(cluster, "job_cls") else None
        self.last_worker = time.monotonic()
        self.last_check = 0.0

    def _job_ids(self) -> list[str]:
        jobs = getattr(self.cluster, "workers", {}) or {}
        return [str(j.job_id) for j in jobs.values() if getattr(j, "job_id", None)]

    def _jobs_alive(self, ids: list[str]) -> bool:
        import subprocess

        name = getattr(self.cluster.job_cls, "__name__", "").lower()
        if not ids:
            return False
        if name.startswith("slurm"):
            cmd = ["squeue", "-h", "-o", "%i", "-j", ",".join(ids)]
        elif name.startswith("pbs"):
            cmd = ["qstat", *ids]
        else:
            return True  # no query known for this scheduler: keep waiting, as before
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            return True
        return out.returncode == 0 and bool(out.stdout.strip())

    def stalled(self) -> str | None:
        """None while work can go on; else why it cannot (one line)."""
        if self.cluster is None:
            return None
        now = time.monotonic()
        if now - self.last_check < self.EVERY_S:
            return None
        self.last_check = now
        try:
            n_workers = len(self.client.scheduler_info().get("workers", {}))
        except Exception:  # noqa: BLE001 - a scheduler hiccup is not a verdict
            return None
        if n_workers:
            self.last_worker = now
            return None
        if now - self.last_worker < self.GRACE_S or self._jobs_alive(self._job_ids()):
            return None
        jobs = list((getattr(self.cluster, "workers", {}) or {}).values())
        logs = getattr(jobs[0], "log_directory", None) if jobs else None
        where = f"; worker logs in {logs}" if logs else ""
        return ("the cluster's batch jobs ended (walltime too short, cancelled, or failed"
                f"{where}) and no worker is left; rerun to run the missing tasks, with a "
                "longer walltime if they need it")


def _safe_key(key: str) -> str:
    return "sweep-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in key[:64])


def _open_client(
    cluster: Any,
    stack: contextlib.ExitStack,
    *,
    n_pending: int,
    n_workers: int | None,
    threads: int,
) -> Any:
    """Return a connected Client; ``stack`` closes what this function started (also on Ctrl-C)."""
    from distributed import Client
    from distributed.deploy import Cluster

    if isinstance(cluster, Client):
        return cluster
    if isinstance(cluster, Cluster):
        return stack.enter_context(Client(cluster, set_as_default=False))
    if cluster is None:
        from distributed import LocalCluster

        n = n_workers or max(1, min(n_pending, _cpu_count() // threads))
        try:
            lc = LocalCluster(
                n_workers=n,
                threads_per_worker=1,  # one task at a time per worker; `threads` is for the task
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=logging.CRITICAL,
                env={name: str(threads) for name in _THREAD_ENV},
            )
        except Exception as exc:
            main_file = getattr(sys.modules.get("__main__"), "__file__", None)
            hint = (
                f" (workers re-import the main script {main_file!r}, which is not a file)"
                if main_file and not os.path.exists(main_file)
                else ""
            )
            raise ConfigError(
                f"could not start local Dask worker processes{hint}: {one_line_error(exc)}",
                where="local cluster",
                fix="run from a script file or `python -m`, give --workers fewer, or use "
                "cluster='serial' (--cluster serial)",
            ) from exc
        stack.callback(_close_quietly, lc)
        client = Client(lc, set_as_default=False)
        stack.callback(_close_quietly, client)
        return client
    text = os.fspath(cluster) if isinstance(cluster, os.PathLike) else str(cluster)
    if "://" in text:
        try:
            client = Client(text, timeout="10s", set_as_default=False)
        except Exception as exc:
            raise ConfigError(
                f"cannot connect to the Dask scheduler ({one_line_error(exc)})",
                where=f"--cluster {text}",
                fix="start `dask scheduler` and workers there, or check the "
                "address; " + _CLUSTER_HELP,
            ) from exc
        stack.callback(_close_quietly, client)
        return client
    path = Path(text)
    if path.suffix.lower() in (".yaml", ".yml") or path.exists():
        jq = _jobqueue_cluster(path, threads)
        stack.callback(_close_quietly, jq)
        client = Client(jq, set_as_default=False)
        stack.callback(_close_quietly, client)
        return client
    raise ConfigError(f"unknown cluster {text!r}", where="--cluster", fix=_CLUSTER_HELP)


def _close_quietly(obj: Any) -> None:
    with contextlib.suppress(Exception):
        obj.close()


_JOBQUEUE_CLASSES = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "sge": "SGECluster",
    "lsf": "LSFCluster",
    "oar": "OARCluster",
    "htcondor": "HTCondorCluster",
}


def _jobqueue_cluster(path: Path, threads: int) -> Any:
    """Make a dask-jobqueue cluster from a YAML file, scaled to ``jobs`` batch jobs."""
    if not path.exists():
        raise ConfigError(
            "cluster file not found",
            where=str(path),
            fix="give the path of a dask-jobqueue YAML file; " + _CLUSTER_HELP,
        )
    import yaml

    try:
        conf = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"not valid YAML ({one_line_error(exc)})", where=str(path), fix="fix the YAML syntax"
        ) from exc
    if not isinstance(conf, dict):
        raise ConfigError(
            "expected a mapping of options",
            where=str(path),
            fix="write keys such as system: slurm, cores: 8, memory: 16GB",
        )
    conf = dict(conf)
    system = str(conf.pop("system", "")).lower()
    if system not in _JOBQUEUE_CLASSES:
        raise ConfigError(
            f"system {system or '(missing)'!r} is not one of {', '.join(_JOBQUEUE_CLASSES)}",
            where=f"{path}: system",
            fix="set system: slurm or system: pbs",
        )
    jobs = int(conf.pop("jobs", 1))
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise ConfigError(
            "dask-jobqueue is not installed",
            where=f"--cluster {path}",
            fix="pip install dask-jobqueue (in this environment), or run "
            "without --cluster for a local cluster",
        ) from exc
    cls = getattr(dask_jobqueue, _JOBQUEUE_CLASSES[system])
    cores = int(conf.get("cores", threads))
    conf.setdefault("processes", max(1, cores // threads))
    exports = [f"export {n}={threads}" for n in _THREAD_ENV]
    conf["job_script_prologue"] = list(conf.get("job_script_prologue", [])) + exports
    try:
        jq = cls(**conf)
    except TypeError as exc:
        raise ConfigError(
            f"bad option for {cls.__name__} ({one_line_error(exc)})",
            where=str(path),
            fix=f"use the keyword names of dask-jobqueue's {cls.__name__}",
        ) from exc
    jq.scale(jobs=jobs)
    return jq
