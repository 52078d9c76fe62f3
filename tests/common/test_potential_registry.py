"""Potentials by name, by entry point (adapter plug-ins) and by import path; common/ names no
domain package in its code."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import ase.io
import pytest
from ase.build import bulk

from common.errors import ConfigError
from common.potential.pair import LennardJones
from common.potential.registry import (
    GROUP,
    adapter_entry_points,
    make_potential,
    names,
    user_potential,
)

REPO = Path(__file__).resolve().parents[2]
DOMAINS = ("catalysis", "electrolytes", "drug_binding", "semiconductors", "atmospheric")

USER_MODULE = textwrap.dedent('''
    import torch
    from common.potential.protocol import BatchedPotential

    class Harmonic(BatchedPotential):
        """Every atom tied to the origin of its cell by a spring k (eV/Å²)."""
        cutoff = 1.0

        def __init__(self, k=1.0):
            super().__init__()
            self.k = float(k)

        def forward(self, state, neighbors, compute_stress=False):
            x = state.positions
            e = torch.zeros(state.n_systems, dtype=x.dtype).index_add_(
                0, state.system_idx, 0.5 * self.k * (x * x).sum(-1))
            return {"energy": e, "forces": -self.k * x}

    class NotAPotential:
        pass
''')


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    name = f"user_pot_{os.getpid()}"
    (tmp_path / f"{name}.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_adapters_come_from_entry_points():
    eps = adapter_entry_points()
    assert eps["schnet"] == "catalysis.model:SchNetAdapter"
    assert GROUP == "mlp_cases.adapters"
    assert names()[:2] == ["lj", "morse"] and "schnet" in names()


def test_user_potential_by_import_path(user_module):
    pot = make_potential(f"{user_module}:Harmonic", {"k": 2.0})
    assert type(pot).__name__ == "Harmonic" and pot.k == 2.0
    lj = make_potential("common.potential.pair:LennardJones", {"epsilon": 0.01, "sigma": 3.4})
    assert isinstance(lj, LennardJones) and lj.sigma == 3.4


@pytest.mark.parametrize("target,word", [
    ("{m}:NotAPotential", "not a BatchedPotential"),
    ("{m}:Missing", "has no attribute"),
    ("no_such_module_xyz:Thing", "cannot import"),
    ("{m}:Harmonic", "bad parameters"),
])
def test_user_potential_errors(user_module, target, word):
    params = {"stiffness": 1.0} if target.endswith("Harmonic") else {}
    with pytest.raises(ConfigError) as e:
        user_potential(target.format(m=user_module), params)
    msg = str(e.value)
    assert word in msg and "\n" not in msg and "fix:" in msg, msg


def test_unknown_name_lists_what_exists():
    with pytest.raises(ConfigError, match="schnet") as e:
        make_potential("nonsense")
    assert "module:Class" in str(e.value) or "module.Class" in str(e.value)


def test_cli_md_with_a_user_potential(tmp_path, user_module):
    """``mlp-cases md --potential module:Class --param k=v`` runs a user's own potential."""
    src = tmp_path / "ar.extxyz"
    ase.io.write(src, bulk("Ar", "fcc", a=5.26, cubic=True))
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{REPO}", "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).parent / "mlp-cases"), "md", str(src), "--potential",
           f"{user_module}:Harmonic", "--param", "k=0.5", "--steps", "20", "--temperature-K",
           "50", "--out", str(tmp_path / "md"), "--json"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    s = json.loads(p.stdout)
    assert s["steps"] == 20 and s["replicas"] == 1
    cmd[cmd.index(f"{user_module}:Harmonic")] = f"{user_module}:NotAPotential"
    cmd[cmd.index(str(tmp_path / "md"))] = str(tmp_path / "md2")
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2 and p.stdout == ""
    errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "not a BatchedPotential" in errors[0], p.stderr
    assert not (tmp_path / "md2").exists()


def _code_names(path: Path) -> set[str]:
    """Every identifier, imported module and non-docstring string constant in a file."""
    tree = ast.parse(path.read_text())
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            out.add(node.id)
        elif isinstance(node, ast.Attribute):
            out.add(node.attr)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            out.update(a.name for a in node.names)
            out.add(getattr(node, "module", None) or "")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and id(node) not in docstrings:
            out.add(node.value)
    return out


def test_common_names_no_domain_package():
    """`common/` may mention the pipelines in its docs, never in its code."""
    hits = []
    for path in sorted((REPO / "common").rglob("*.py")):
        for name in _code_names(path):
            if any(d in name for d in DOMAINS):
                hits.append(f"{path.relative_to(REPO)}: {name!r}")
    assert not hits, hits

