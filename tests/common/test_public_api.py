"""The curated namespaces of common.md and common.potential: every exported name resolves, and
the quick-start in common.md's docstring runs as written (in a temporary folder)."""

import importlib
import re

import pytest


@pytest.mark.parametrize("package", ["common.md", "common.potential", "common.data",
                                     "common.labels", "common.events"])
def test_every_exported_name_resolves(package):
    mod = importlib.import_module(package)
    assert mod.__all__
    for name in mod.__all__:
        assert getattr(mod, name) is not None, name


def test_unknown_names_are_attribute_errors():
    import common.md

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        common.md.nope  # noqa: B018


def test_md_quick_start_runs(tmp_path, monkeypatch):
    import common.md

    monkeypatch.chdir(tmp_path)
    lines = [ln[4:] for ln in common.md.__doc__.splitlines() if ln.startswith((">>> ", "... "))]
    code = re.sub(r"\s*# doctest: \+SKIP", "", "\n".join(lines)).replace("steps=200", "steps=20")
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - the docstring's own example
    s = scope["summary"]
    assert s["replicas"] == 4 and (tmp_path / "runs" / "argon" / "summary.json").exists()
