"""The documentation: every Python example in the README and under docs/ runs as written, and
the site builds with warnings as errors (broken links, missing snippets, docstrings that do not
parse are failures).

A Python block preceded by the line ``<!-- example: slow -->`` runs only with ``-m slow``.
Each block runs in a fresh interpreter in an empty folder, so examples are self-contained.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)```", re.S)
SLOW_MARK = "<!-- example: slow -->"


def _sources() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _examples():
    for path in _sources():
        text = path.read_text()
        for m in BLOCK.finditer(text):
            line = text.count("\n", 0, m.start("code")) + 1
            rel = path.relative_to(ROOT).as_posix()
            marks = [pytest.mark.slow] if m.group("before").strip() == SLOW_MARK else []
            yield pytest.param(m.group("code"), id=f"{rel}:{line}", marks=marks)


EXAMPLES = list(_examples())


def _env() -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MPLBACKEND="Agg",
               PYTHONWARNINGS="ignore")
    env.pop("MLP_CASES_DEBUG", None)
    return env


def test_there_are_examples_for_every_pipeline_and_the_shared_layer():
    ids = " ".join(p.id for p in EXAMPLES)
    assert "docs/concepts.md" in ids
    text = (ROOT / "README.md").read_text()
    for pkg in ("catalysis", "electrolytes", "drug_binding", "semiconductors", "atmospheric"):
        assert f"[start:{pkg}-python]" in text, pkg
        assert f'"README.md:{pkg}-python"' in (ROOT / f"docs/pipelines/{pkg}.md").read_text()


@pytest.mark.parametrize("code", EXAMPLES)
def test_example_runs_as_written(code, tmp_path):
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (f"the example failed:\n{code}\n--- stderr ---\n"
                                  f"{proc.stderr[-3000:]}")


def test_site_builds_with_warnings_as_errors(tmp_path):
    env = dict(_env(), NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(tmp_path / "site")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)
    problems = [ln for ln in proc.stderr.splitlines() if ln.startswith(("WARNING", "ERROR"))]
    assert proc.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(problems[:40])
    site = tmp_path / "site"
    for page in ("index.html", "concepts/index.html", "api/common/index.html",
                 "pipelines/electrolytes/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api/common/index.html").read_text()
    assert "common.md.runner.run_md" in api          # the reference is generated from docstrings
    pipeline = (site / "pipelines/electrolytes/index.html").read_text()
    assert "transport_report" in pipeline            # the README example was included
