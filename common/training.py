"""What every adapter does around its framework's own trainer.

That is: score a trained potential on labelled frames, and draw the parity plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from common.errors import DataError


def reference_arrays(frames) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(energies (n_frames,) eV, forces (n_atoms_total, 3) eV/Å, atoms per frame)."""
    from common.data.dataset import get_labels

    es, fs, ns = [], [], []
    for k, a in enumerate(frames):
        lab = get_labels(a)
        if "energy" not in lab or "forces" not in lab:
            raise DataError("frame has no energy or forces", where=f"frame {k}",
                            fix="label the structures first (mlp-cases label)")
        es.append(float(lab["energy"]))
        fs.append(np.asarray(lab["forces"], dtype=float))
        ns.append(len(a))
    return np.array(es), np.concatenate(fs), np.array(ns)


def predict(potential, frames, batch_size: int = 16, device: str = "cpu"
            ) -> tuple[np.ndarray, np.ndarray]:
    """Energies and forces of ``frames`` from a BatchedPotential, in batches."""
    from common.potential.protocol import evaluate

    es, fs = [], []
    frames = list(frames)
    for start in range(0, len(frames), batch_size):
        out = evaluate(potential, frames[start:start + batch_size], device=device)
        es.append(out["energy"].detach().cpu().numpy())
        fs.append(out["forces"].detach().cpu().numpy())
    return np.concatenate(es), np.concatenate(fs)


def error_metrics(potential, frames, device: str = "cpu") -> dict[str, float]:
    """Energy-per-atom and force-component MAE/RMSE of ``potential`` against the labels."""
    frames = list(frames)
    e_ref, f_ref, n = reference_arrays(frames)
    e, f = predict(potential, frames, device=device)
    de = (e - e_ref) / n
    df = (f - f_ref).ravel()
    return {"n_frames": len(frames),
            "energy_mae_eV_per_atom": float(np.abs(de).mean()),
            "energy_rmse_eV_per_atom": float(np.sqrt((de**2).mean())),
            "force_mae_eV_A": float(np.abs(df).mean()),
            "force_rmse_eV_A": float(np.sqrt((df**2).mean()))}


def parity_plot(potential, frames, path: str | Path, title: str = "", device: str = "cpu"
                ) -> Path:
    """Predicted vs reference energy per atom and force components, saved as an image."""
    from common.plots import pyplot, save_figure

    plt = pyplot()

    frames = list(frames)
    e_ref, f_ref, n = reference_arrays(frames)
    e, f = predict(potential, frames, device=device)
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    for ax, x, y, unit, name in ((axes[0], e_ref / n, e / n, "eV/atom", "energy"),
                                 (axes[1], f_ref.ravel(), f.ravel(), "eV/Å", "force")):
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.scatter(x, y, s=6, alpha=0.6)
        mae = float(np.abs(x - y).mean())
        ax.set_xlabel(f"reference {name} ({unit})")
        ax.set_ylabel(f"predicted {name} ({unit})")
        ax.set_title(f"{name}: MAE {mae:.3g} {unit}")
    fig.suptitle(title)
    return save_figure(fig, path)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's random generators with ``seed``."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def check_training_data(train, valid, test=None) -> None:
    """Refuse data no adapter can train on, before anything is written.

    That is fewer than 2 training or 1 validation frames, or a validation/test frame with an element
    the training set lacks (the model would have no weights for it).
    """
    from common.errors import DataError

    if len(train) < 2 or len(valid) < 1:
        raise DataError(f"too little data to train ({len(train)} train, {len(valid)} valid "
                        "frames)", where="dataset",
                        fix="label more structures (at least 2 train and 1 valid)")
    known = {s for a in train for s in a.get_chemical_symbols()}
    for split, frames in (("valid", valid), ("test", test)):
        for k, a in enumerate(frames if frames is not None else []):
            extra = sorted(set(a.get_chemical_symbols()) - known)
            if extra:
                raise DataError(f"element {extra[0]} is not in the training set "
                                f"({', '.join(sorted(known))})", where=f"{split} frame {k}",
                                fix=f"add structures with {extra[0]} to the training set")
