"""train_committee(parallel=N) for an adapter whose trainer runs in a child process
(``trains_in_subprocess``): members train in threads side by side, ``threads`` is passed only to
a ``train`` that takes it, and the committee is the one trained one by one (same seeds, same
folders, same record). Continuing a committee (``init_from``) follows the member names the
folder records and refuses another member count before anything trains."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.potential.committee import committee_members, save_committee_folder, train_committee


class _Threaded:
    """Trains "in a child process" (here: waits for a partner member at a barrier when side by
    side) and records what it was given and on which thread."""

    name = "threaded"
    trains_in_subprocess = True
    calls: list[dict] = []
    barrier: threading.Barrier | None = None

    def __init__(self, path, seed):
        self.path, self.elements = Path(path), ("H",)
        self.meta = {"metrics": {"seed": seed}}

    @classmethod
    def train(cls, train, valid, workdir, config=None, seed=0, test=None, device="cpu",
              progress=False, threads=None, init_from=None):
        if cls.barrier is not None:
            cls.barrier.wait()  # BrokenBarrierError unless a second member trains meanwhile
        Path(workdir).mkdir(parents=True, exist_ok=True)
        cls.calls.append({"workdir": Path(workdir), "seed": seed, "threads": threads,
                          "init_from": init_from, "config": config,
                          "thread": threading.current_thread().name})
        if seed < 0:
            raise ConfigError("negative seed", where="seed", fix="give a seed >= 0")
        return cls(workdir, seed)


class _NoThreads(_Threaded):
    """The same, with a ``train`` that has no ``threads`` parameter."""

    name = "nothreads"

    @classmethod
    def train(cls, train, valid, workdir, config=None, seed=0, **kw):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        cls.calls.append({"workdir": Path(workdir), "seed": seed, **kw,
                          "thread": threading.current_thread().name})
        return cls(workdir, seed)


def _run(cls, tmp_path, name, parallel, barrier=None, **kw):
    cls.calls, cls.barrier = [], barrier
    folder, members = train_committee(cls, [], [], tmp_path / name, 4, config={"c": 1}, seed=3,
                                      parallel=parallel, **kw)
    calls = sorted(cls.calls, key=lambda c: c["seed"])
    return folder, members, calls, json.loads((folder / "mlp-cases-model.json").read_text())


def test_side_by_side_in_threads_equals_one_by_one(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    _, seq, seq_calls, seq_meta = _run(_Threaded, tmp_path, "one", 1)
    _, par, par_calls, par_meta = _run(_Threaded, tmp_path, "two", 2,
                                       barrier=threading.Barrier(2, timeout=10))
    assert [c["seed"] for c in par_calls] == [c["seed"] for c in seq_calls] == [3, 4, 5, 6]
    assert [c["workdir"].name for c in par_calls] == [f"member_{k}" for k in range(4)]
    assert [c["workdir"].name for c in seq_calls] == [f"member_{k}" for k in range(4)]
    assert all(c["config"] == {"c": 1} for c in par_calls + seq_calls)
    assert [m.meta["metrics"]["seed"] for m in par] == [3, 4, 5, 6]  # in member order
    # one by one: this thread, the trainer's own thread count; side by side: 8 // 2 each
    assert {c["thread"] for c in seq_calls} == {threading.current_thread().name}
    assert [c["threads"] for c in seq_calls] == [None] * 4
    assert all(c["thread"].startswith("committee-member") for c in par_calls)
    assert [c["threads"] for c in par_calls] == [4] * 4
    assert par_meta == seq_meta and par_meta["members"] == [f"member_{k}" for k in range(4)]
    assert par_meta["member_framework"] == "threaded" and par_meta["elements"] == ["H"]


def test_threads_given_by_the_caller_win_and_parallel_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    _Threaded.calls, _Threaded.barrier = [], None
    train_committee(_Threaded, [], [], tmp_path / "c", 2, parallel=8, threads=1)
    assert [c["threads"] for c in _Threaded.calls] == [1, 1]
    _Threaded.calls = []
    train_committee(_Threaded, [], [], tmp_path / "d", 2, parallel=8)
    assert [c["threads"] for c in _Threaded.calls] == [4, 4]  # 8 cores // min(8, 2 members)


def test_threads_are_not_passed_to_a_train_without_them(tmp_path):
    _, members, calls, _ = _run(_NoThreads, tmp_path, "c", 2)
    assert len(members) == 4 and all("threads" not in c for c in calls)
    assert all(c["thread"].startswith("committee-member") for c in calls)


def test_a_members_error_is_raised_side_by_side_as_one_by_one(tmp_path):
    for parallel in (1, 2):
        _Threaded.calls, _Threaded.barrier = [], None
        with pytest.raises(ConfigError, match="negative seed"):
            train_committee(_Threaded, [], [], tmp_path / f"p{parallel}", 2, seed=-1,
                            parallel=parallel)
        assert not (tmp_path / f"p{parallel}" / "mlp-cases-model.json").exists()


def test_continuing_follows_the_recorded_member_names(tmp_path):
    """A committee folder whose members are not named member_k (a hand-assembled one, or one
    with a member replaced): member k continues from the k-th recorded member."""
    old = tmp_path / "old"
    for name in ("b", "a"):
        (old / name).mkdir(parents=True)
    save_committee_folder(old, [old / "b", old / "a"], framework="threaded")
    assert committee_members(old) == [old / "b", old / "a"]
    for parallel in (1, 2):
        _Threaded.calls, _Threaded.barrier = [], None
        folder, _ = train_committee(_Threaded, [], [], tmp_path / f"new{parallel}", 2, seed=1,
                                    init_from=old, parallel=parallel)
        calls = sorted(_Threaded.calls, key=lambda c: c["seed"])
        assert [c["init_from"] for c in calls] == [old / "b", old / "a"]
        assert committee_members(folder) == [folder / "member_0", folder / "member_1"]


def test_folders_saved_as_ensembles_before_0_2_still_continue(tmp_path):
    old = tmp_path / "old"
    (old / "member_0").mkdir(parents=True)
    (old / "mlp-cases-model.json").write_text(json.dumps(
        {"framework": "ensemble", "member_framework": "threaded", "members": ["member_0"]}))
    assert committee_members(old) == [old / "member_0"]


def test_another_member_count_or_a_non_committee_is_refused_before_training(tmp_path):
    old = tmp_path / "old"
    train_committee(_NoThreads, [], [], old, 2)
    _Threaded.calls, _Threaded.barrier = [], None
    with pytest.raises(ConfigError, match="has 2 members, not 3") as err:
        train_committee(_Threaded, [], [], tmp_path / "new", 3, init_from=old, parallel=2)
    assert err.value.where == str(old) and "train from scratch" in err.value.fix
    assert _Threaded.calls == [] and not (tmp_path / "new").exists()
    with pytest.raises(ConfigError, match="no mlp-cases-model.json"):
        train_committee(_Threaded, [], [], tmp_path / "new", 2, init_from=old / "member_0")
    (old / "member_0" / "mlp-cases-model.json").write_text('{"framework": "schnet"}')
    with pytest.raises(ConfigError, match="'schnet' model, not a committee one"):
        train_committee(_Threaded, [], [], tmp_path / "new", 2, init_from=old / "member_0")
    assert _Threaded.calls == []
