"""benchmarks/engine_overhead.py runs end to end on LJ and its split adds up: the potential's
calls, the neighbour updates and the rest make the step, and the engine's own share is the
part that is not the potential."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "engine_overhead.py"


def test_engine_overhead_benchmark_split_adds_up():
    out = subprocess.run([sys.executable, str(SCRIPT), "--replicas", "1,2", "--steps", "5",
                          "--ase-steps", "2", "--json"], capture_output=True, text=True,
                         timeout=300, check=True).stdout
    rows = json.loads(out[out.index("\n["):])
    assert [r["replicas"] for r in rows] == [1, 2]
    for r in rows:
        parts = r["engine_potential_ms"] + r["engine_neighbor_ms"] + r["engine_rest_ms"]
        assert abs(parts - r["engine_step_ms"]) < 1e-6 * r["engine_step_ms"] + 1e-9
        own = (r["engine_neighbor_ms"] + r["engine_rest_ms"]) / r["engine_step_ms"]
        assert abs(r["engine_own_fraction"] - own) < 1e-9
        assert 0.0 < r["engine_own_fraction"] < 1.0
        assert r["ase_replica_steps_per_s"] > 0 and r["ratio_engine_over_ase"] > 0
