"""train_committee(init_from=...) continues member k from member k of an earlier committee
folder and records the new committee like any other."""

from __future__ import annotations

import json
from pathlib import Path

from common.potential.committee import train_committee


class _Recorder:
    """An adapter whose ``train`` writes a folder and remembers what it was given."""

    name = "recorder"
    calls: list[dict] = []

    def __init__(self, path, kw):
        self.path, self.meta, self.elements = Path(path), {"metrics": {"k": kw["seed"]}}, None

    @classmethod
    def train(cls, train, valid, workdir, config=None, seed=0, **kw):
        Path(workdir).mkdir(parents=True, exist_ok=True)
        cls.calls.append({"workdir": Path(workdir), "seed": seed, **kw})
        return cls(workdir, {"seed": seed})


def test_members_continue_their_namesakes(tmp_path):
    _Recorder.calls = []
    train_committee(_Recorder, [], [], tmp_path / "r0", 2, seed=5)
    assert all("init_from" not in c for c in _Recorder.calls)
    _Recorder.calls = []
    folder, members = train_committee(_Recorder, [], [], tmp_path / "r1", 2, seed=7,
                                      init_from=tmp_path / "r0")
    assert [c["init_from"] for c in _Recorder.calls] == [tmp_path / "r0" / "member_0",
                                                         tmp_path / "r0" / "member_1"]
    assert [c["seed"] for c in _Recorder.calls] == [7, 8]
    meta = json.loads((folder / "mlp-cases-model.json").read_text())
    assert meta["members"] == ["member_0", "member_1"] and len(members) == 2
