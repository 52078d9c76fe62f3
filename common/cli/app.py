"""Building and running typer apps: one-line errors, ``--json`` output, exit codes.

Every console script calls :func:`run_app`, so every command behaves the same way:

* an :class:`~common.errors.MlpCasesError` (bad input, missing framework, blow-up) prints one
  ``error: ...`` line with the fix and exits with code 2;
* any other exception is a bug: one line saying so, exit code 3, and the full traceback when
  ``MLP_CASES_DEBUG=1`` is set;
* Ctrl-C exits with 130 after whatever was already written has been kept.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from common.errors import MlpCasesError


def new_app(help: str) -> typer.Typer:
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False
    )


def emit_json(obj: Any) -> None:
    """Print one JSON object on stdout (numpy scalars and paths are converted)."""

    def default(o: Any) -> Any:
        if hasattr(o, "tolist"):
            return o.tolist()
        if hasattr(o, "__fspath__"):
            return os.fspath(o)
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    sys.stdout.write(json.dumps(obj, default=default, indent=2) + "\n")
    sys.stdout.flush()


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    try:
        # with standalone_mode=False click *returns* the code of typer.Exit(n)
        rc = app(args=argv, standalone_mode=False)
    except MlpCasesError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):
        print("error: interrupted; results written so far are kept", file=sys.stderr)
        return 130
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            print("error: interrupted; results written so far are kept", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if os.environ.get("MLP_CASES_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"error: internal error {type(exc).__name__}: {msg} -- this is a bug in mlp-cases; "
            "rerun with MLP_CASES_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        return 3
    if rc == 130:
        print("error: interrupted; results written so far are kept", file=sys.stderr)
    return rc if isinstance(rc, int) else 0
