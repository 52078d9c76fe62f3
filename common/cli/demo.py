"""``mlp-cases demo``: the shared layer end to end (labels -> dataset -> model -> batched MD)."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli.app import emit_json


def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="output folder"),
    scale: str = typer.Option("tiny", "--scale", help="tiny (about a minute) or small"),
    seed: int = typer.Option(0, "--seed"),
    json_out: bool = typer.Option(False, "--json", help="print summary.json"),
) -> None:
    """EMT labels -> dataset -> fitted Morse potential -> batched NVT/NVE MD -> summary.json."""
    from common import demo as demo_mod

    summary = demo_mod.run(out, scale=scale, seed=seed, progress=not json_out)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())
        print(f"written: {out}/summary.json, report.md, labels.db, dataset/, model/, md_*/")
