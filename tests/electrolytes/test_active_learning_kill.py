"""`mlp-electrolytes active-learn` killed with SIGKILL in the middle of an iteration's
labelling, then rerun: it finishes, labels no frame twice and trains on no frame twice (slow:
real GFN1-xTB labels and deepmd-kit trainings)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

MAX_NEW = 3


def _data(tmp: Path) -> tuple[Path, Path]:
    """A 38-atom cell (3 EC + LiPF6) and 7 labelled rattled copies of it."""
    import ase.io

    from common.labels import LabellerSpec, label_structures, labelled_frames
    from electrolytes.case_study import rattled
    from electrolytes.systems import liquid_cell

    cell = liquid_cell(counts={"EC": 3, "Li": 1, "PF6": 1}, density_g_cm3=1.3, seed=0)
    cell.info = {"charge": 0}
    ase.io.write(tmp / "start.extxyz", cell)
    frames = rattled([cell], 6, (0.005, 0.03), seed=0)
    spec = LabellerSpec("xtb", {"method": "GFN1-xTB"})
    label_structures(frames, spec, tmp / "initial.db", progress=False, cluster="serial")
    done = labelled_frames(frames, spec, tmp / "initial.db")
    ase.io.write(tmp / "data.extxyz", done)
    return tmp / "start.extxyz", tmp / "data.extxyz"


def _command(start: Path, data: Path, work: Path, config: Path) -> list[str]:
    exe = str(Path(sys.executable).with_name("mlp-electrolytes"))
    return [exe, "active-learn", str(start), str(data), "--out", str(work),
            "--iterations", "1", "--steps", "60", "--frame-every", "5",
            "--temperatures", "300", "--committee", "2", "--max-new", str(MAX_NEW),
            "--trust-lo-eV-A", "0", "--trust-hi-eV-A", "1000", "--fractions", "0.6,0.2,0.2",
            "--config", str(config), "--cluster", "serial", "--json"]


def _n_rows(db: Path) -> int:
    import ase.db

    if not db.exists():
        return 0
    try:
        with ase.db.connect(db) as con:
            return con.count()
    except Exception:  # being written this instant
        return 0


def test_kill_9_while_labelling_then_rerun_labels_and_trains_each_frame_once(tmp_path):
    from common.labels import LabelDB
    from electrolytes.model import load_config

    start, data = _data(tmp_path)
    config = tmp_path / "deepmd.json"
    config.write_text(json.dumps(load_config("tiny", numb_steps=60, decay_steps=20,
                                             disp_freq=20, save_freq=60)))
    work = tmp_path / "al"
    db = work / "labels.db"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(_command(start, data, work, config), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    killed_at = None
    deadline = time.monotonic() + 900
    while proc.poll() is None and time.monotonic() < deadline:
        n = _n_rows(db)
        if 1 <= n < MAX_NEW:  # inside round 0's labelling: some labels saved, not all
            proc.send_signal(signal.SIGKILL)
            killed_at = n
            break
        time.sleep(0.02)
    rc = proc.wait()
    assert killed_at is not None and rc == -signal.SIGKILL, (rc, proc.stderr.read()[-2000:])
    assert not (work / "result.json").exists()

    done = subprocess.run(_command(start, data, work, config), env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    (entry,) = result["history"]
    assert entry["n_labelled"] == MAX_NEW
    # every selected frame labelled exactly once: the killed run's labels were reused
    assert _n_rows(db) == len(LabelDB(db).done_keys()) == MAX_NEW
    # the final committee trained on the initial training frames plus the new labels, once
    coords = [np.load(p) for p in sorted((Path(result["model"]) / "member_0" / "data" / "train")
                                         .glob("**/coord.npy"))]
    flat = np.concatenate([c.reshape(len(c), -1) for c in coords])
    assert len(flat) == result["n_train"]
    assert len({r.round(6).tobytes() for r in flat}) == len(flat)
