"""Library errors name parameters; the command line names flags.

This is the one place that maps one to the other.

Library code raises :class:`~common.errors.MlpCasesError` in Python terms: ``where="fractions"``,
``fix="... pass overwrite=True"``, ``place_many coverage_ML``, a parameter in backticks. When
a command fails, :func:`common.cli.app.run_app` rewrites the error in that command's terms with
:func:`translate`, using the command's map ``{parameter: flag}``: built from the command's own
options (the Python name of each option -> its long flag, each argument -> its metavar),
plus what the command declares with :func:`param_flags` for library parameters named
differently (``n_models`` -> ``--committee``). Rewritten are:

* ``where`` that is a parameter name, or ends in one (``place_many species``);
* ``name=value`` (``overwrite=True`` -> ``--overwrite``, ``dt_fs=10`` -> ``--dt-fs 10``);
* a parameter in backticks, and any identifier with an underscore that is a parameter;
* a parenthesis about Python (``(dt_fs=10 in Python)``) is dropped.
"""

from __future__ import annotations

import contextvars
import functools
import re
from collections.abc import Callable
from typing import Any

from common.errors import MlpCasesError

__all__ = ["current_flags", "instrument", "param_flags", "translate"]

_ATTR = "__mlp_param_flags__"
_CURRENT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "mlp_cases_flags", default=None)


def param_flags(**mapping: str) -> Callable[[Callable], Callable]:
    """Declare the library parameter names that a command's flags stand for.

    Use it as a decorator on the command::

        @param_flags(n_models="--committee", species="--adsorbate")
        def train(...): ...
    """
    def deco(func: Callable) -> Callable:
        setattr(func, _ATTR, {**getattr(func, _ATTR, {}), **mapping})
        return func

    return deco


def command_flags(cmd: Any) -> dict[str, str]:
    """Return ``{parameter: flag}`` of a click command (typer's vendored click or click itself)."""
    out: dict[str, str] = {}
    for p in getattr(cmd, "params", ()):
        if not p.name:
            continue
        opts = [o for o in getattr(p, "opts", ()) if o.startswith("--")]
        if getattr(p, "param_type_name", "") == "argument":
            out[p.name] = p.name.upper()
        elif opts:
            out[p.name] = opts[0]
    callback = getattr(cmd, "callback", None)
    out.update(getattr(_unwrap(callback), _ATTR, {}) if callback else {})
    return out


def _unwrap(func: Callable) -> Callable:
    while hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return func


def instrument(cmd: Any) -> Any:
    """Make every command under ``cmd`` record its flag map while it runs; return ``cmd``.

    The map of the running command is read with :func:`current_flags`.
    """
    for sub in getattr(cmd, "commands", {}).values():
        instrument(sub)
    callback = getattr(cmd, "callback", None)
    if callback is not None and not getattr(callback, "_mlp_instrumented", False):
        cmd.callback = _recording(callback, command_flags(cmd))
    return cmd


def _recording(callback: Callable, flags: dict[str, str]) -> Callable:
    @functools.wraps(callback)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _CURRENT.set(flags)
        return callback(*args, **kwargs)

    wrapped._mlp_instrumented = True  # type: ignore[attr-defined]
    return wrapped


def current_flags() -> dict[str, str]:
    """Return the flag map of the command running now (empty outside a command)."""
    return _CURRENT.get() or {}


def reset() -> None:
    _CURRENT.set(None)


_PYTHON_ASIDE = re.compile(r"\s*\([^()]*\bin Python\)")
_IDENT = re.compile(r"(?<![\w.\-'\"])([A-Za-z_]\w*)(?![\w(])")


def translate_text(text: str | None, flags: dict[str, str]) -> str | None:
    """Return ``text`` with parameter names replaced by the flags in ``flags``."""
    if not text or not flags:
        return text
    text = _PYTHON_ASIDE.sub("", text)

    def assign(m: re.Match) -> str:
        name, value = m.group(1), m.group(2)
        flag = flags.get(name)
        if flag is None:
            return m.group(0)
        if value == "True":
            return flag
        if value == "False":
            return flag.replace("--", "--no-", 1) if flag.startswith("--") else flag
        return f"{flag} {value}"

    text = re.sub(r"(?<![\w.\-])([A-Za-z_]\w*)=(\S+?)(?=[\s,;)]|$)", assign, text)
    text = re.sub(r"`([A-Za-z_]\w*)`",
                  lambda m: flags.get(m.group(1), m.group(0)), text)
    return _IDENT.sub(
        lambda m: flags[m.group(1)] if "_" in m.group(1) and m.group(1) in flags
        else m.group(0), text)


def translate_where(where: str | None, flags: dict[str, str]) -> str | None:
    if not where or not flags:
        return where
    if where in flags:
        return flags[where]
    head, _, last = where.rpartition(" ")
    if head and last in flags and re.fullmatch(r"[A-Za-z_]\w*", head):
        return flags[last]  # "place_many species" -> "--adsorbate"
    return translate_text(where, flags)


def translate(exc: MlpCasesError, flags: dict[str, str] | None = None) -> MlpCasesError:
    """Rewrite ``exc`` (in place) in the running command's flags; returns it."""
    flags = current_flags() if flags is None else flags
    if not flags:
        return exc
    exc.where = translate_where(exc.where, flags)
    exc.what = translate_text(exc.what, flags) or exc.what
    exc.fix = translate_text(exc.fix, flags)
    exc.args = (exc.one_line(),)
    return exc
