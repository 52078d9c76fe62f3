"""One error type for everything a user can get wrong.

Every message says what is wrong, where (file, frame, argument) and how to fix it. The CLI turns
an :class:`MlpCasesError` into a single ``error: ...`` line and a non-zero exit code; Python
callers get the exception with the same text.
"""

from __future__ import annotations


class MlpCasesError(Exception):
    """A problem with the user's input or environment, with the fix in the message."""

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None):
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """Return the message as one line: ``where: what -- fix: ...``."""
        parts = [f"{self.where}: {self.what}" if self.where else self.what]
        if self.fix:
            parts.append(f"fix: {self.fix}")
        return " -- ".join(parts)


class DataError(MlpCasesError):
    """Bad structures or labels (unreadable file, missing forces, NaN, overlapping atoms...)."""


class ConfigError(MlpCasesError):
    """A bad option value (unknown calculator, impossible charge/multiplicity, timestep <= 0...)."""


class EnvironmentProblem(MlpCasesError):
    """A framework is missing or broken in this environment."""


class SimulationError(MlpCasesError):
    """A simulation stopped (blow-up guard); the trajectory up to that point is kept."""
