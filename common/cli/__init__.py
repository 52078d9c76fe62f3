"""Command-line helpers shared by ``mlp-cases`` and the five ``mlp-<domain>`` apps.

* :mod:`common.cli.app`: :func:`run_app` (exit codes, one-line errors), :func:`new_app`,
  :func:`emit_json`, :func:`example` (a command's help epilog), :func:`warn`;
* :mod:`common.cli.options`: the shared typed options (one flag name per concept);
* :mod:`common.cli.flags`: library parameter names -> the running command's flags;
* :mod:`common.cli.testing`: the bad-input table every app's tests run.
"""

from common.cli.app import emit_json, example, new_app, run_app, warn

__all__ = ["emit_json", "example", "new_app", "run_app", "warn"]
