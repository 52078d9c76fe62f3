"""mkdocs hook: the API pages list every module of their package, found on disk.

A page under ``api/`` that contains the line ``<!-- api-modules: PACKAGE -->`` gets one
mkdocstrings block (``::: module``) per module of ``PACKAGE`` (command-line modules and
``__init__`` left out: the CLI is documented on the pipeline pages), so a new module is in the
reference without anyone editing the page.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(r"^<!-- api-modules: ([a-z_]+) -->$", re.M)


def api_modules(package: str) -> list[str]:
    """Dotted names of the documented modules of ``package``, in path order."""
    names = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = rel.parts
        if parts[-1] == "__init__" or parts[-1].startswith("_"):
            continue
        if any(p == "cli" or p.startswith("cli_") for p in parts[1:]) or parts[-1] == "cli":
            continue
        names.append(".".join(parts))
    return names


def on_page_markdown(markdown: str, page, config, files) -> str:
    """Expand the api-modules marker of an API page into mkdocstrings blocks."""
    def blocks(match: re.Match) -> str:
        return "\n".join(f"::: {name}\n" for name in api_modules(match.group(1)))
    return MARKER.sub(blocks, markdown)
