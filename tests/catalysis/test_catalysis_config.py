"""The catalysis case-study configs are checked against catalysis.case_study.CaseConfig."""

from __future__ import annotations

import json

import pytest

from catalysis.case_study import CONFIGS, CaseConfig, load_case_config
from common.errors import ConfigError


@pytest.mark.parametrize("scale", ["tiny", "medium", "paper"])
def test_shipped_configs_pass_the_schema_unchanged(scale):
    raw = json.loads((CONFIGS / f"case_{scale}.json").read_text())
    raw = {k: v for k, v in raw.items() if not k.startswith("_")}
    cfg = load_case_config(scale)
    defaults = {"library": "", "production_system": {}}  # optional keys
    cfg = {k: v for k, v in cfg.items() if k in raw or defaults.get(k, object()) != v}
    assert json.dumps(cfg, sort_keys=True) == json.dumps(raw, sort_keys=True)
    assert CaseConfig.from_dict(cfg).md.steps == raw["md"]["steps"]


def test_a_typo_or_a_missing_key_is_one_line_naming_it_and_the_file(tmp_path):
    cfg = load_case_config("tiny")
    path = tmp_path / "case.json"
    cfg["md"]["frame_evry"] = cfg["md"].pop("frame_every")
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError) as exc:
        load_case_config(path)
    text = str(exc.value)
    assert "\n" not in text and text.startswith(f"{path}: unknown key 'md.frame_evry'")
    assert "valid keys of md: trajectories, temperature_K" in text
    cfg["md"]["frame_every"] = cfg["md"].pop("frame_evry")
    del cfg["al_md_steps"]
    path.write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match=f"{path}: missing key 'al_md_steps'"):
        load_case_config(path)
