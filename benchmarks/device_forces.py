"""Forces on the GPU against forces on the CPU, same potential, same structures.

For the LJ pair potential and a SchNet model (random weights: agreement does not depend on
them) it evaluates a batch of structures on the CPU in float64 (the reference) and on each
requested device/dtype, and prints the largest force and energy differences. Without CUDA it
compares CPU float32 with CPU float64 (the CPU half of ``scripts/gpu_check.sh``).

    .venv/bin/python benchmarks/device_forces.py [--json]
"""

from __future__ import annotations

import argparse
import json
import tempfile

import torch
from ase.build import bulk

from catalysis.model import SchNetAdapter, load_config
from common.potential.pair import LennardJones
from common.potential.protocol import evaluate


def structures():
    base = bulk("Ar", "fcc", a=5.26, cubic=True).repeat((2, 2, 2))
    out = []
    for r in range(8):
        a = base.copy()
        a.rattle(0.05, seed=r)
        out.append(a)
    return out


def compare(make, frames, targets) -> list[dict]:
    ref = evaluate(make("cpu", torch.float64), frames)
    rows = []
    for device, dtype in targets:
        got = evaluate(make(device, dtype), frames, device=device, dtype=dtype)
        df = (got["forces"].double().cpu() - ref["forces"]).abs().max().item()
        de = (got["energy"].double().cpu() - ref["energy"]).abs().max().item()
        rows.append({"device": device, "dtype": str(dtype).replace("torch.", ""),
                     "max_force_diff_eV_A": df, "max_energy_diff_eV": de,
                     "max_force_eV_A": ref["forces"].abs().max().item()})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    cuda = torch.cuda.is_available()
    targets = ([("cuda", torch.float64), ("cuda", torch.float32)] if cuda
               else [("cpu", torch.float32)])
    frames = structures()
    tmp = tempfile.mkdtemp(prefix="device_forces_")
    SchNetAdapter.untrained(tmp, load_config("tiny"))
    makers = {
        "lj": lambda dev, dt: LennardJones(epsilon=0.0104, sigma=3.4, rc=8.5),
        "schnet": lambda dev, dt: SchNetAdapter.load(tmp, device=dev).batched(dtype=dt),
    }
    report = {"cuda": cuda, "results": {}}
    print(f"CUDA available: {cuda}; reference: cpu float64")
    for name, make in makers.items():
        report["results"][name] = compare(make, frames, targets)
        for r in report["results"][name]:
            print(f"{name:>7} {r['device']:>5} {r['dtype']:>8}: max |dF| "
                  f"{r['max_force_diff_eV_A']:.2e} eV/Å (max |F| {r['max_force_eV_A']:.2f}), "
                  f"max |dE| {r['max_energy_diff_eV']:.2e} eV")
    if args.json:
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
