"""``mlp-cases``: the shared commands (doctor, dataset, label, md)."""

from __future__ import annotations

import sys

from common.cli import dataset, demo, doctor, label, md
from common.cli.app import example, new_app, run_app

app = new_app("mlp-cases: shared tools for the five MLP pipelines.",
              epilog=example("mlp-cases dataset inspect labels.db"))
app.command("doctor", epilog=doctor.EXAMPLE)(doctor.doctor)
app.add_typer(dataset.app, name="dataset")
app.command("label", epilog=label.EXAMPLE)(label.label)
app.command("md", epilog=md.EXAMPLE)(md.md)
app.command("demo", epilog=demo.EXAMPLE)(demo.demo)


def main() -> None:
    """Run the ``mlp-cases`` command line."""
    sys.exit(run_app(app))


if __name__ == "__main__":
    main()
