"""Building and running typer apps: one-line errors, ``--json`` output, exit codes.

Every console script calls :func:`run_app`, so every command behaves the same way:

* a usage mistake (unknown option or command, missing option, a value of the wrong type or out
  of range, no arguments at all) prints click's usage message and one ``Error:`` line on
  stderr, exit code 2;
* an :class:`~common.errors.MlpCasesError` (bad input, missing framework, blow-up) prints one
  ``error: ...`` line with the fix, in the command's own flags (:mod:`common.cli.flags`), and
  exits with code 2;
* any other exception is a bug: one line saying so, exit code 3, and the full traceback when
  ``MLP_CASES_DEBUG=1`` is set;
* Ctrl-C exits with 130 after whatever was already written has been kept.

stdout carries only results (tables, ``--json``); errors, warnings and progress bars go to
stderr.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import typer

from common.cli import flags as _flags
from common.errors import MlpCasesError

_INTERRUPTED = "error: interrupted; results written so far are kept"


def new_app(help: str, epilog: str | None = None) -> typer.Typer:
    """Make a typer app with the project's settings.

    Plain click help and errors (no rich panels, no ``<bool>`` on flags), no completion install,
    help when called without arguments (exit 2, a usage error).
    """
    return typer.Typer(
        help=help, epilog=epilog, no_args_is_help=True, add_completion=False,
        pretty_exceptions_enable=False, rich_markup_mode=None,
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


def example(*lines: str) -> str:
    r"""Return a command's help epilog: one example shown as written (click keeps ``\b`` blocks)."""
    return "Example:\n\n\b\n" + "\n".join(f"  {ln}" for ln in lines)


def warn(message: str) -> None:
    """One ``warning: ...`` line on stderr (the run goes on)."""
    print(f"warning: {message}", file=sys.stderr)


def _usage_error(exc: BaseException) -> int | None:
    """Show a click/typer usage error and return its exit code; None if ``exc`` is not one.

    typer 0.29 vendors click (``typer._click``) and raises its own copies of click's exceptions
    (subclasses of ``typer.TyperException``); a library may still raise click's own.
    """
    show = getattr(exc, "show", None)
    if isinstance(exc, typer.TyperException) and callable(show):
        show()
        return int(getattr(exc, "exit_code", 2))
    try:
        import click
    except ImportError:  # pragma: no cover - click comes with the environment
        return None
    if isinstance(exc, click.ClickException):
        exc.show()
        return exc.exit_code
    return None


def run_app(app: typer.Typer, argv: list[str] | None = None) -> int:
    """Run ``app`` on ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    cmd = _flags.instrument(typer.main.get_command(app))
    _flags.reset()
    try:
        # standalone_mode=False: click *returns* the code of typer.Exit(n) and raises the rest
        rc = cmd.main(args=argv, standalone_mode=False)
    except MlpCasesError as exc:
        print(f"error: {_flags.translate(exc).one_line()}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, typer.Abort):
        print(_INTERRUPTED, file=sys.stderr)
        return 130
    except typer.Exit as exc:
        if exc.exit_code == 130:  # typer turns Ctrl-C into Exit(130)
            print(_INTERRUPTED, file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        code = _usage_error(exc)
        if code is not None:
            return code
        if os.environ.get("MLP_CASES_DEBUG"):
            raise
        msg = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"error: internal error {type(exc).__name__}: {msg} -- this is a bug in mlp-cases; "
            "rerun with MLP_CASES_DEBUG=1 for the traceback and report it",
            file=sys.stderr,
        )
        return 3
    finally:
        _flags.reset()
    if rc == 130:
        print(_INTERRUPTED, file=sys.stderr)
    return rc if isinstance(rc, int) else 0
