"""``mlp-cases demo``: the shared layer end to end (labels -> dataset -> model -> batched MD)."""

from __future__ import annotations

from pathlib import Path

import typer

from common.cli import options as opt
from common.cli.app import emit_json, example

EXAMPLE = example("mlp-cases demo --scale tiny --out runs/demo")
_Out = opt.out_option("output folder (labels stay cached there; the rest is redone)",
                      required=False)


def demo(
    out: _Out = Path("runs/demo"),
    scale: str = typer.Option("tiny", "--scale", metavar="SCALE",
                              help="tiny (about a minute) or small"),
    seed: opt.Seed = 0,
    json_out: opt.Json = False,
) -> None:
    """EMT labels -> dataset -> fitted Morse potential -> batched NVT/NVE MD -> summary.json."""
    from common import demo as demo_mod

    summary = demo_mod.run(out, scale=scale, seed=seed, progress=not json_out)
    if json_out:
        emit_json(summary)
    else:
        print((out / "report.md").read_text())
        print(f"written: {out}/summary.json, report.md, labels.db, dataset/, model/, md_*/")
