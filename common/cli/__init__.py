"""Command-line helpers shared by ``mlp-cases`` and the five ``mlp-<domain>`` apps."""

from common.cli.app import emit_json, new_app, run_app

__all__ = ["emit_json", "new_app", "run_app"]
