"""drug_binding's public names: every exported name resolves, the pipeline loads lazily."""

from __future__ import annotations

import subprocess
import sys

import drug_binding


def test_every_exported_name_resolves_to_its_module_object():
    import importlib

    assert len(drug_binding.__all__) == len(set(drug_binding.__all__))
    for name in drug_binding.__all__:
        value = getattr(drug_binding, name)
        if name in drug_binding._LAZY:  # the lazy name is the module's own object
            module, attr = drug_binding._LAZY[name]
            assert value is getattr(importlib.import_module(f"drug_binding.{module}"), attr)
    assert drug_binding.run_case_study.__module__ == "drug_binding.case_study"
    assert drug_binding.prepare_complex.__name__ == "prepare"
    assert set(drug_binding.__all__) <= set(dir(drug_binding))


def test_submodules_are_not_shadowed_and_unknown_names_fail():
    from drug_binding import prepare, screening

    assert prepare.__name__ == "drug_binding.prepare" and screening.screen is drug_binding.screen
    try:
        drug_binding.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("an unknown name resolved")


def test_importing_the_package_loads_no_framework():
    code = ("import sys, drug_binding; "
            "print(sorted(m for m in ('torch', 'openmm', 'rdkit', 'torchani') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
