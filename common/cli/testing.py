"""The bad-input table every ``mlp-*`` app must pass, reusable by each pipeline's tests.

    from common.cli.testing import Row, check_row, generic_rows

    @pytest.mark.parametrize("row", generic_rows(app) + MY_ROWS, ids=lambda r: r.id)
    def test_bad_input(row, tmp_path, capsys):
        check_row(app, row, tmp_path, capsys, files={...})

A row is an argv (``{name}`` placeholders are filled from ``files``, paths made in the test's
folder) and what must happen:

* ``kind="usage"``: a usage mistake -- exit 2, click's ``Usage:`` text and one ``Error:`` line;
* ``kind="error"``: a bad value -- exit 2, exactly one ``error:`` line (``warning:`` lines may
  precede it) naming the command's flags, not Python parameters;
* ``kind="exit2"``: either of the two.

Always: nothing on stdout, no ``internal error``/``Traceback``, and no new file or folder in the
test's folder (so a rerun cannot trip over a leftover). :func:`generic_rows` derives rows from
the app itself: an unknown command and option, no arguments, ``--json true``, a word for each
number, a value below each ``min=``, a bad choice, ``--device tpu``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Row", "check_row", "generic_rows", "snapshot"]


@dataclass(frozen=True)
class Row:
    """One bad command line and what it must give (see the module docstring)."""

    id: str
    argv: tuple[str, ...]
    kind: str = "error"
    needles: tuple[str, ...] = ()
    xfail: str | None = None
    allow_new: tuple[str, ...] = field(default=())

    def args(self, files: dict[str, Any]) -> list[str]:
        """Return the command line with the ``{name}`` placeholders filled from ``files``."""
        return [a.format(**{k: str(v) for k, v in files.items()}) for a in self.argv]


def snapshot(folder: Path) -> set[str]:
    """Every path under ``folder`` (hidden ones too), relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _commands(cmd: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    subs = getattr(cmd, "commands", None)
    if subs:
        out: list[tuple[tuple[str, ...], Any]] = []
        for name, sub in sorted(subs.items()):
            out.extend(_commands(sub, (*path, name)))
        return out
    return [(path, cmd)]


def _type_name(p: Any) -> str:
    """"integer", "float", "choice" or "" (typer 0.29's params keep their annotation)."""
    from enum import Enum

    td = getattr(p, "type_descriptor", None)
    if td is not None:
        ann = td.annotation
        if ann is int:
            return "integer"
        if ann is float:
            return "float"
        return "choice" if isinstance(ann, type) and issubclass(ann, Enum) else ""
    return str(getattr(getattr(p, "type", None), "name", "")).lower()


def _min(p: Any) -> Any:
    low = getattr(p, "min", None)
    return low if low is not None else getattr(getattr(p, "type", None), "min", None)


def generic_rows(app: Any) -> list[Row]:
    """Rows every app must pass, derived from its commands and their options."""
    import typer

    top = typer.main.get_command(app)
    rows = [Row("no-arguments", (), "usage"),
            Row("unknown-command", ("no-such-command",), "usage")]
    for path, cmd in _commands(top):
        name = "-".join(path) or "app"
        rows.append(Row(f"{name}-unknown-option", (*path, "--no-such-option"), "usage"))
        required = [p for p in cmd.params if p.required]
        if required:
            rows.append(Row(f"{name}-missing-required", path, "usage"))
        for p in cmd.params:
            flag = next((o for o in getattr(p, "opts", ()) if o.startswith("--")), None)
            if flag is None or getattr(p, "is_flag", False):
                if flag == "--json":  # "true" is an extra argument, or taken as a file name
                    takes = any(getattr(q, "param_type_name", "") == "argument"
                                for q in cmd.params)
                    rows.append(Row(f"{name}-json-true", (*path, "--json", "true"),
                                    "exit2" if takes else "usage"))
                continue
            tname = _type_name(p)
            if "integer" in tname or "float" in tname:
                rows.append(Row(f"{name}{flag}-word", (*path, flag, "abc"), "usage"))
                low = _min(p)
                if low is not None:
                    bad = str(low - 1)
                    rows.append(Row(f"{name}{flag}-below-min", (*path, flag, bad), "usage"))
            elif "choice" in tname or "enum" in tname:
                rows.append(Row(f"{name}{flag}-bad-choice", (*path, flag, "no-such-value"),
                                "usage"))
            if flag == "--device":
                rows.append(Row(f"{name}-device-tpu", (*path, "--device", "tpu"), "error",
                                ("--device", "unknown device")))
    return rows


_PYTHONISMS = re.compile(r"=True\b|=False\b|\bin Python\b|\bpass overwrite\b")


def check_row(app: Any, row: Row, folder: Path, capsys: Any,
              files: dict[str, Any] | None = None) -> None:
    """Run ``row`` through ``app`` in-process (cwd: ``folder``) and assert the contract."""
    import os

    from common.cli.app import run_app

    args = row.args(files or {})
    before = snapshot(folder)
    capsys.readouterr()
    cwd = os.getcwd()
    os.chdir(folder)
    try:
        code = run_app(app, args)
    finally:
        os.chdir(cwd)
    cap = capsys.readouterr()
    out, err = cap.out, cap.err
    shown = f"argv={args}\nexit={code}\nstdout={out!r}\nstderr={err}"
    assert code == 2, shown
    assert out == "", shown
    assert "internal error" not in err and "Traceback" not in err, shown
    lines = [ln for ln in err.splitlines() if ln.strip()]
    # click's usage text and one "Error:" line; with no arguments at all, the whole help
    usage = any(ln.startswith("Usage:") for ln in lines) and (
        sum(ln.startswith("Error:") for ln in lines) == 1
        or (not args and any(ln.startswith("Commands:") for ln in lines)))
    errors = [ln for ln in lines if ln.startswith("error:")]
    others = [ln for ln in lines if not ln.startswith(("error:", "warning:"))]
    one_error = len(errors) == 1 and not others and lines[-1] == errors[0]
    if row.kind == "usage":
        assert usage and not errors, shown
    elif row.kind == "error":
        assert one_error, shown
    else:
        assert usage or one_error, shown
    text = errors[0] if errors else err
    for needle in row.needles:
        assert needle in text, (needle, shown)
    if errors:
        assert not _PYTHONISMS.search(errors[0]), shown
        names = [n for n in _flag_names(app, args) if "_" in n]
        for n in names:
            assert not re.search(rf"(?<![\w\-]){re.escape(n)}(?!\w)", errors[0]), (n, shown)
    new = {p for p in snapshot(folder) - before
           if not any(p == a or p.startswith(a + "/") for a in row.allow_new)}
    assert not new, (f"left behind: {sorted(new)}", shown)


def _flag_names(app: Any, args: list[str]) -> list[str]:
    """Return the Python names of the parameters of the command that ``args`` runs.

    They catch untranslated parameter names in its messages.
    """
    import typer

    from common.cli.flags import command_flags

    cmd = typer.main.get_command(app)
    for a in args:
        subs = getattr(cmd, "commands", None)
        if not subs or a not in subs:
            break
        cmd = subs[a]
    return list(command_flags(cmd))
