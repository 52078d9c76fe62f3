"""common.case_study: the folder claim, stage clock, JSON and formatting every case study uses."""

import json
from dataclasses import dataclass

import numpy as np
import pytest

from common.case_study import StageClock, claim_outdir, fmt, json_plain
from common.errors import ConfigError


def test_claim_resumes_same_settings_and_refuses_others(tmp_path):
    out = tmp_path / "run"
    claim_outdir(out, {"scale": "tiny", "seed": 0})
    (out / "keep.txt").write_text("finished stage")
    claim_outdir(out, {"seed": 0, "scale": "tiny"})  # same settings, any key order
    with pytest.raises(ConfigError, match="other settings") as err:
        claim_outdir(out, {"scale": "tiny", "seed": 1})
    assert "\n" not in str(err.value)
    assert (out / "keep.txt").read_text() == "finished stage"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="not a folder"):
        claim_outdir(tmp_path / "file", {})


def test_clock_json_and_fmt():
    clock = StageClock()
    with clock("a_s"):
        pass
    assert set(clock.t) == {"a_s"} and clock.t["a_s"] >= 0

    @dataclass
    class P:
        x: float

    text = json.dumps({"a": np.float64(1.5), "b": np.arange(2), "c": P(2.0)}, default=json_plain)
    assert json.loads(text) == {"a": 1.5, "b": [0, 1], "c": {"x": 2.0}}
    assert fmt(None) == fmt(float("nan")) == "—" and fmt(0.1234) == "0.12"
