"""common.config: JSON configs checked against frozen-dataclass schemas."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.config import ConfigSchema, load_json_config
from common.errors import ConfigError


@dataclass(frozen=True)
class Thermostat(ConfigSchema):
    temperature_K: float
    friction_per_ps: float = 0.01


@dataclass(frozen=True)
class Run(ConfigSchema):
    name: str
    steps: int
    window_A: tuple[float, float]
    thermostat: Thermostat
    labeller: dict[str, Any]
    seed: int | None = None
    tags: list[str] = field(default_factory=list)


GOOD = {"_comment": "ignored", "name": "tiny", "steps": 10, "window_A": [0.1, 2],
        "thermostat": {"temperature_K": 300}, "labeller": {"name": "emt"}}


def _error(data: dict, where: str = "run.json") -> str:
    with pytest.raises(ConfigError) as exc:
        Run.from_dict(data, where=where)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{where}: ")
    return text


def test_from_dict_fills_defaults_and_converts():
    cfg = Run.from_dict(GOOD)
    assert cfg.window_A == (0.1, 2.0) and cfg.thermostat.temperature_K == 300.0
    assert isinstance(cfg.thermostat.temperature_K, float)
    assert cfg.thermostat.friction_per_ps == 0.01 and cfg.seed is None and cfg.tags == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.steps = 3  # type: ignore[misc]
    d = cfg.to_dict()
    assert d == {"name": "tiny", "steps": 10, "window_A": [0.1, 2.0],
                 "thermostat": {"temperature_K": 300.0, "friction_per_ps": 0.01},
                 "labeller": {"name": "emt"}, "seed": None, "tags": []}
    assert Run.from_dict(json.loads(json.dumps(d))) == cfg
    assert Run.from_dict({**GOOD, "seed": 3}).seed == 3


def test_missing_unknown_and_mistyped_keys_are_named():
    bad = {k: v for k, v in GOOD.items() if k != "steps"}
    text = _error(bad)
    assert "missing key 'steps'" in text and "valid keys: name, steps, window_A" in text
    text = _error({**GOOD, "step": 5})
    assert "unknown key 'step'" in text
    text = _error({**GOOD, "thermostat": {"temperature_K": 300, "fricton_per_ps": 1}})
    assert "unknown key 'thermostat.fricton_per_ps'" in text
    assert "valid keys of thermostat: temperature_K, friction_per_ps" in text
    assert "missing key 'thermostat.temperature_K'" in _error({**GOOD, "thermostat": {}})
    assert "key 'steps' must be int, got str '10'" in _error({**GOOD, "steps": "10"})
    assert "key 'steps' must be int" in _error({**GOOD, "steps": 2.5})
    assert "key 'steps' must be int" in _error({**GOOD, "steps": True})
    assert "needs 2 values, got 3" in _error({**GOOD, "window_A": [1, 2, 3]})
    assert "key 'window_A[1]' must be float" in _error({**GOOD, "window_A": [1, "x"]})
    assert "key 'seed' must be" in _error({**GOOD, "seed": "x"})
    assert "thermostat must be a JSON object" in _error({**GOOD, "thermostat": 300})


def test_load_json_config_checks_the_file_and_overrides(tmp_path):
    (tmp_path / "run_tiny.json").write_text(json.dumps(GOOD))
    cfg = load_json_config("tiny", tmp_path, "run", schema=Run, steps=20, seed=None)
    assert isinstance(cfg, Run) and cfg.steps == 20 and cfg.seed is None
    assert load_json_config("tiny", tmp_path, "run")["steps"] == 10  # no schema: the dict
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**GOOD, "thermostat": {"temperature": 300}}))
    with pytest.raises(ConfigError, match=r"mine\.json: unknown key 'thermostat\.temperature'"):
        load_json_config(path, tmp_path, "run", schema=Run)
    with pytest.raises(ConfigError, match=r"\(overrides\): unknown key 'stepz'"):
        load_json_config("tiny", tmp_path, "run", schema=Run, stepz=3)
    with pytest.raises(ConfigError, match="no config 'huge'.*use one of tiny"):
        load_json_config("huge", tmp_path, "run", schema=Run)
    path.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="not an object of keys"):
        load_json_config(path, tmp_path, "run", schema=Run)
    path.write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_json_config(path, tmp_path, "run", schema=Run)
