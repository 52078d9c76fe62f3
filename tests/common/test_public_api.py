"""The curated namespaces of common and of the five domain packages: every exported name
resolves, importing a package loads no framework, and the quick-start in common.md's docstring
runs as written (in a temporary folder)."""

import importlib
import re

import pytest


@pytest.mark.parametrize("package", ["common.md", "common.potential", "common.data",
                                     "common.labels", "common.events", "catalysis",
                                     "electrolytes", "drug_binding", "semiconductors",
                                     "atmospheric"])
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


@pytest.mark.parametrize("package", ["catalysis", "drug_binding"])
def test_importing_a_lazy_package_loads_no_framework(package):
    import subprocess
    import sys

    code = (f"import sys, {package}; "
            "print(sorted(m for m in ('torch', 'schnetpack', 'torchani', 'mace', 'openmm') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]", out
