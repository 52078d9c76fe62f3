"""The ``calculator`` argument: an ASE calculator, a ``LabellerSpec`` or a preset name.

Used by :func:`~catalysis.systems.slabs.fcc_lattice_constant` and
:func:`~catalysis.systems.md.md_snapshots`.
"""

from __future__ import annotations

from typing import Any

from common.errors import ConfigError


def _as_calculator(calculator: Any) -> Any:
    if isinstance(calculator, str) or type(calculator).__name__ == "LabellerSpec":
        from common.labels import make_calculator

        return make_calculator(calculator)
    if not hasattr(calculator, "get_potential_energy") and not hasattr(calculator,
                                                                       "calculate"):
        raise ConfigError(f"{type(calculator).__name__} is not an ASE calculator",
                          where="calculator",
                          fix="pass an ASE calculator, a LabellerSpec or a preset name ('emt')")
    return calculator
