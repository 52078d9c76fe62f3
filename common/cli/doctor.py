"""``mlp-cases doctor``: frameworks, versions, device, and the fix for anything missing."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from common.cli import options as opt
from common.cli.app import emit_json, example

EXAMPLE = example("mlp-cases doctor --pip-check")


def doctor(
    json_out: opt.Json = False,
    pip_check: bool = typer.Option(False, "--pip-check", help="also run `pip check`"),
) -> None:
    """List each framework with its version, whether it imports, and the device."""
    from common import envcheck

    rep = envcheck.report(with_pip_check=pip_check)
    if json_out:
        emit_json(rep)
    else:
        table = Table(title="mlp-cases environment")
        for col in ("component", "version", "imports", "import s", "fix"):
            table.add_column(col)
        for c in rep["components"]:
            table.add_row(
                c["name"], c["version"] or "missing",
                "[green]yes[/]" if c["imports"] else f"[red]no[/] {c['error']}",
                f"{c['import_s']:.1f}", c["fix"] or "",
            )
        con = Console()
        con.print(table)
        d = rep["device"]
        con.print(
            f"device: {d['default_device']}"
            + (f" ({d['cuda_device']})" if d["cuda_available"] else "")
            + f", torch {d['torch']}, {d['cpu_count']} CPU cores, python {d['python']}"
        )
        con.print(f"native CPU kernels: {d['native_kernels']}")
        if "pip_check" in rep:
            for line in rep["pip_check"]["unexpected"]:
                con.print(f"[red]unexpected pip conflict:[/] {line}")
            con.print(f"pip check: {len(rep['pip_check']['accepted'])} accepted conflicts")
        con.print("[green]environment ok[/]" if rep["ok"] else "[red]environment NOT ok[/]")
    if not rep["ok"]:
        raise typer.Exit(1)
