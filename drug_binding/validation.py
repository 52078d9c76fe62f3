"""Predicted vs experimental binding free energies: conversion, metrics, bootstrap, parity plot.

* **Experimental ΔG** from a dissociation constant: ``ΔG = RT ln(Kd / 1 M)`` in kcal/mol
  (standard state 1 M; ``R = 8.314462618 J/(mol K) / 4184 J/kcal``). Kd = 1 nM at 298.15 K
  gives −12.278 kcal/mol. An IC50 is taken as Kd unless the Cheng–Prusoff inputs (substrate
  concentration [S] and Michaelis constant Km) are given: ``Ki = IC50 / (1 + [S]/Km)``
  (Cheng & Prusoff, Biochem. Pharmacol. 22, 3099 (1973); competitive inhibition).
* **Metrics** as the field reports them: R² is the squared Pearson r (not the coefficient of
  determination of the identity line), RMSE and MAE in kcal/mol, Kendall τ (τ-b, as
  ``scipy.stats.kendalltau``).
* **Intervals**: percentile bootstrap over compounds (resampled with replacement, seeded);
  resamples where a correlation is undefined (all values equal) are left out of its interval.

:func:`validate_table` returns the JSON of ``mlp-drug-binding validate``; :func:`benchmark_set`
reads the experimental ΔG of the JACS 2015 benchmark (Wang et al., J. Am. Chem. Soc. 137,
2695 (2015): BACE, CDK2, JNK1, MCL1, p38, PTP1B, thrombin, TYK2) from the copy that
openmmforcefields ships (``openmmforcefields/data/perses_jacs_systems``).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import ConfigError, DataError, EnvironmentProblem

__all__ = [
    "EXPERIMENTAL_COLUMNS",
    "R_KCAL_PER_MOL_K",
    "benchmark_files",
    "benchmark_set",
    "benchmark_sets",
    "bootstrap_ci",
    "cheng_prusoff_ki_nM",
    "kd_to_dg_kcal_per_mol",
    "metrics",
    "plot_validation",
    "validate_table",
]

#: gas constant in kcal/(mol K) (CODATA R over the thermochemical calorie)
R_KCAL_PER_MOL_K: float = 8.314462618 / 4184.0
#: the table columns that can hold the experimental value, in the order they are looked for
EXPERIMENTAL_COLUMNS: tuple[str, ...] = ("dG_exp_kcal_per_mol", "Kd_nM", "IC50_nM")
METRICS: tuple[str, ...] = ("r2", "pearson_r", "kendall_tau", "rmse_kcal_per_mol",
                            "mae_kcal_per_mol")
_PRED = "dG_pred_kcal_per_mol"
_MIN_ROWS = 3


# ---------------------------------------------------------------------------------------------
# conversions


def _check_temperature(temperature_K: float) -> float:
    t = float(temperature_K)
    if not (math.isfinite(t) and t > 0):
        raise ConfigError(f"temperature must be > 0 K, got {temperature_K}",
                          where="temperature_K", fix="give e.g. 298.15 (--temperature-K)")
    return t


def kd_to_dg_kcal_per_mol(kd_nM: float | np.ndarray, temperature_K: float = 298.15
                          ) -> float | np.ndarray:
    """Binding free energy ``RT ln(Kd / 1 M)`` in kcal/mol from a Kd (or Ki) in nM.

    Raises
    ------
    ConfigError
        Temperature not > 0 K, or a Kd that is not > 0 nM.
    """
    t = _check_temperature(temperature_K)
    kd = np.asarray(kd_nM, dtype=float)
    if not np.all(np.isfinite(kd) & (kd > 0)):
        raise ConfigError(f"Kd must be > 0 nM, got {kd_nM}", where="kd_nM",
                          fix="give the dissociation constant in nM")
    dg = R_KCAL_PER_MOL_K * t * np.log(kd * 1e-9)
    return float(dg) if dg.ndim == 0 else dg


def cheng_prusoff_ki_nM(ic50_nM: float | np.ndarray, substrate_uM: float, km_uM: float
                        ) -> float | np.ndarray:
    """Inhibition constant ``Ki = IC50 / (1 + [S]/Km)`` in nM (competitive inhibition).

    Parameters
    ----------
    ic50_nM
        Half-maximal inhibitory concentration(s), nM.
    substrate_uM, km_uM
        Substrate concentration of the assay and the substrate's Michaelis constant, µM.
    """
    s, km = float(substrate_uM), float(km_uM)
    if not (math.isfinite(s) and s >= 0):
        raise ConfigError(f"substrate concentration must be >= 0 µM, got {substrate_uM}",
                          where="substrate_uM", fix="give the assay's [S] in µM")
    if not (math.isfinite(km) and km > 0):
        raise ConfigError(f"Km must be > 0 µM, got {km_uM}", where="km_uM",
                          fix="give the substrate's Michaelis constant in µM")
    ki = np.asarray(ic50_nM, dtype=float) / (1.0 + s / km)
    return float(ki) if ki.ndim == 0 else ki


# ---------------------------------------------------------------------------------------------
# metrics


def _kendall_tau_b(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall τ-b of each row pair of ``x``, ``y`` (shape ``(B, n)``); NaN where undefined.

    ``τ_b = Σ sgn(Δx) sgn(Δy) / sqrt(Σ sgn(Δx)² Σ sgn(Δy)²)`` over pairs, which handles ties
    exactly as ``scipy.stats.kendalltau`` does (resamples are full of ties).
    """
    n = x.shape[1]
    out = np.empty(x.shape[0])
    chunk = max(1, 4_000_000 // max(1, n * n))
    iu, ju = np.triu_indices(n, k=1)
    for b0 in range(0, x.shape[0], chunk):
        sx = np.sign(x[b0:b0 + chunk, iu] - x[b0:b0 + chunk, ju])
        sy = np.sign(y[b0:b0 + chunk, iu] - y[b0:b0 + chunk, ju])
        den = np.sqrt((sx * sx).sum(1) * (sy * sy).sum(1))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[b0:b0 + chunk] = np.where(den > 0, (sx * sy).sum(1) / den, np.nan)
    return out


def _pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    dx = x - x.mean(axis=-1, keepdims=True)
    dy = y - y.mean(axis=-1, keepdims=True)
    den = np.sqrt((dx * dx).sum(-1) * (dy * dy).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (dx * dy).sum(-1) / den, np.nan)
    return np.clip(r, -1.0, 1.0)


def _metric_arrays(exp: np.ndarray, pred: np.ndarray, names: Sequence[str]
                   ) -> dict[str, np.ndarray]:
    """Metrics of each row of ``(B, n)`` arrays (only those in ``names``)."""
    out: dict[str, np.ndarray] = {}
    err = pred - exp
    if "pearson_r" in names or "r2" in names:
        r = _pearson(exp, pred)
        out["pearson_r"], out["r2"] = r, r * r
    if "kendall_tau" in names:
        out["kendall_tau"] = _kendall_tau_b(exp, pred)
    if "rmse_kcal_per_mol" in names:
        out["rmse_kcal_per_mol"] = np.sqrt((err * err).mean(-1))
    if "mae_kcal_per_mol" in names:
        out["mae_kcal_per_mol"] = np.abs(err).mean(-1)
    return {k: out[k] for k in names}


def _finite_or_none(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _paired(exp: Sequence[float], pred: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    e, p = np.asarray(exp, dtype=float), np.asarray(pred, dtype=float)
    if e.ndim != 1 or e.shape != p.shape:
        raise ConfigError(f"need two 1-D arrays of equal length, got shapes {e.shape}, "
                          f"{p.shape}", where="metrics", fix="give one value per compound")
    if len(e) < _MIN_ROWS:
        raise DataError(f"statistics need at least {_MIN_ROWS} compounds, got {len(e)}",
                        where="metrics", fix="add compounds to the table")
    if not (np.all(np.isfinite(e)) and np.all(np.isfinite(p))):
        raise DataError("values must be finite numbers", where="metrics",
                        fix="remove NaN/inf values")
    return e, p


def metrics(dg_exp: Sequence[float], dg_pred: Sequence[float]) -> dict[str, float | None]:
    """R² (squared Pearson r), Pearson r, Kendall τ-b, RMSE and MAE (kcal/mol).

    Correlations are ``None`` where undefined (all experimental or all predicted values equal).
    """
    e, p = _paired(dg_exp, dg_pred)
    vals = _metric_arrays(e[None], p[None], METRICS)
    return {k: _finite_or_none(v[0]) for k, v in vals.items()}


def bootstrap_ci(dg_exp: Sequence[float], dg_pred: Sequence[float], n_bootstrap: int = 1000,
                 seed: int = 0, confidence: float = 0.95,
                 names: Sequence[str] = METRICS) -> dict[str, list[float | None]]:
    """Percentile bootstrap intervals ``{metric: [lo, hi]}`` over compounds.

    Parameters
    ----------
    dg_exp, dg_pred
        Experimental and predicted ΔG (kcal/mol), one per compound.
    n_bootstrap
        Number of resamples (with replacement, same size as the data).
    seed
        Seed of the resampling (same seed -> same intervals).
    confidence
        Central coverage of the interval (0.95 -> 2.5th and 97.5th percentiles).
    names
        Which metrics (default all of :data:`METRICS`).

    Returns
    -------
    dict
        ``[lo, hi]`` per metric; ``[None, None]`` when no resample defines the metric.
    """
    e, p = _paired(dg_exp, dg_pred)
    if int(n_bootstrap) != n_bootstrap or n_bootstrap < 1:
        raise ConfigError(f"n_bootstrap must be an integer >= 1, got {n_bootstrap}",
                          where="n_bootstrap", fix="give e.g. 1000")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must lie in (0, 1), got {confidence}",
                          where="confidence", fix="give e.g. 0.95")
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}", where="names",
                          fix=f"choose from {list(METRICS)}")
    idx = np.random.default_rng(seed).integers(0, len(e), size=(int(n_bootstrap), len(e)))
    vals = _metric_arrays(e[idx], p[idx], names)
    q = [50 * (1 - confidence), 50 * (1 + confidence)]
    out: dict[str, list[float | None]] = {}
    for k, v in vals.items():
        v = v[np.isfinite(v)]
        out[k] = [float(x) for x in np.percentile(v, q)] if v.size else [None, None]
    return out


# ---------------------------------------------------------------------------------------------
# the table


def _read_rows(path_or_rows: str | os.PathLike | Iterable[Mapping[str, Any]]
               ) -> tuple[list[tuple[str, Mapping[str, Any]]], list[str], str]:
    """``[(where, row)]``, the column names and the source's name."""
    if isinstance(path_or_rows, str | os.PathLike):
        path = Path(path_or_rows)
        if not path.is_file():
            raise DataError("file not found", where=str(path),
                            fix="give the path of a CSV table")
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            cols = [c.strip() for c in (reader.fieldnames or [])]
            reader.fieldnames = cols
            rows = [(f"{path} line {reader.line_num}", r) for r in reader]
        return rows, cols, str(path)
    raw = list(path_or_rows)
    cols = list(dict.fromkeys(k for r in raw for k in r))
    return [(f"rows[{k}]", r) for k, r in enumerate(raw)], cols, "rows"


def _experimental_column(cols: Sequence[str], source: str) -> str:
    need = [c for c in ("name", _PRED) if c not in cols]
    have = [c for c in EXPERIMENTAL_COLUMNS if c in cols]
    if need or len(have) != 1:
        what = (f"missing column(s) {need}" if need else
                "no experimental column" if not have else f"several experimental columns {have}")
        raise DataError(f"{what}; found {list(cols)}", where=source,
                        fix=f"give columns name, {_PRED} and exactly one of "
                            f"{', '.join(EXPERIMENTAL_COLUMNS)}")
    return have[0]


def _number(row: Mapping[str, Any], col: str, where: str, positive: bool = False) -> float:
    raw = row.get(col)
    try:
        v = float(str(raw).strip()) if raw is not None else math.nan
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise DataError(f"column {col}: not a number ({raw!r})", where=where,
                        fix="give a finite number in every row")
    if positive and v <= 0:
        raise DataError(f"column {col}: must be > 0, got {v:g}", where=where,
                        fix="give the measured constant in nM (> 0)")
    return v


def _parse_rows(rows: list[tuple[str, Mapping[str, Any]]], col: str
                ) -> tuple[list[str], np.ndarray, np.ndarray]:
    names: list[str] = []
    seen: dict[str, str] = {}
    exp, pred = [], []
    for where, row in rows:
        name = str(row.get("name") or "").strip()
        if not name:
            raise DataError("empty name", where=where, fix="give every compound a name")
        if name in seen:
            raise DataError(f"duplicate name {name!r} (also {seen[name]})", where=where,
                            fix="give each compound one row with a unique name")
        seen[name] = where
        here = f"{where} ({name})"
        names.append(name)
        exp.append(_number(row, col, here, positive=col != EXPERIMENTAL_COLUMNS[0]))
        pred.append(_number(row, _PRED, here))
    return names, np.array(exp), np.array(pred)


def _to_dg(values: np.ndarray, col: str, temperature_K: float, substrate_uM: float | None,
           km_uM: float | None) -> tuple[np.ndarray, str]:
    """Experimental ΔG (kcal/mol) and a word on where it came from."""
    cp = (substrate_uM, km_uM)
    if (cp[0] is None) != (cp[1] is None):
        raise ConfigError("Cheng-Prusoff needs both [S] and Km", where="substrate_uM, km_uM",
                          fix="give both (--substrate-uM, --km-uM) or neither")
    if cp[0] is not None and col != "IC50_nM":
        raise ConfigError(f"Cheng-Prusoff inputs apply to IC50_nM, but the table gives {col}",
                          where="substrate_uM, km_uM", fix="leave them out for this table")
    if col == "dG_exp_kcal_per_mol":
        return values, "dG"
    if col == "Kd_nM":
        return np.asarray(kd_to_dg_kcal_per_mol(values, temperature_K)), "Kd"
    if cp[0] is None:
        return np.asarray(kd_to_dg_kcal_per_mol(values, temperature_K)), "IC50 as Kd"
    ki = cheng_prusoff_ki_nM(values, cp[0], cp[1])
    return np.asarray(kd_to_dg_kcal_per_mol(ki, temperature_K)), "Cheng-Prusoff Ki"


def validate_table(path_or_rows: str | os.PathLike | Iterable[Mapping[str, Any]],
                   temperature_K: float = 298.15, *, substrate_uM: float | None = None,
                   km_uM: float | None = None, n_bootstrap: int = 1000, seed: int = 0
                   ) -> dict[str, Any]:
    """Compare predicted with experimental binding free energies.

    Parameters
    ----------
    path_or_rows
        A CSV file or row mappings with columns ``name``, ``dG_pred_kcal_per_mol`` and one of
        ``dG_exp_kcal_per_mol``, ``Kd_nM``, ``IC50_nM``.
    temperature_K
        Temperature of the ``RT ln(Kd / 1 M)`` conversion.
    substrate_uM, km_uM
        Cheng–Prusoff inputs for an ``IC50_nM`` table (µM); without them IC50 is taken as Kd.
    n_bootstrap, seed
        Resamples and seed of the 95 % percentile bootstrap intervals.

    Returns
    -------
    dict
        ``{n, r2, pearson_r, kendall_tau, rmse_kcal_per_mol, mae_kcal_per_mol,
        ci95: {metric: [lo, hi]}, rows: [{name, dG_exp_kcal_per_mol, dG_pred_kcal_per_mol}],
        experimental_source, temperature_K, n_bootstrap, seed}``; ``experimental_source`` is
        ``"dG"``, ``"Kd"``, ``"IC50 as Kd"`` or ``"Cheng-Prusoff Ki"``.

    Raises
    ------
    DataError
        Missing columns, a non-numeric value, Kd/IC50 <= 0, duplicate names (the message names
        the row and column), fewer than 3 compounds.
    ConfigError
        Bad temperature, or Cheng–Prusoff inputs that are incomplete or not for IC50.
    """
    t = _check_temperature(temperature_K)
    rows, cols, source = _read_rows(path_or_rows)
    col = _experimental_column(cols, source)
    names, raw, pred = _parse_rows(rows, col)
    if len(names) < _MIN_ROWS:
        raise DataError(f"statistics need at least {_MIN_ROWS} compounds, got {len(names)}",
                        where=source, fix="add compounds to the table")
    exp, how = _to_dg(raw, col, t, substrate_uM, km_uM)
    out: dict[str, Any] = {"n": len(names), **metrics(exp, pred)}
    out["ci95"] = bootstrap_ci(exp, pred, n_bootstrap, seed)
    out["rows"] = [{"name": n, "dG_exp_kcal_per_mol": float(e), "dG_pred_kcal_per_mol": float(p)}
                   for n, e, p in zip(names, exp, pred, strict=True)]
    out.update(experimental_source=how, temperature_K=t, n_bootstrap=int(n_bootstrap),
               seed=int(seed))
    return out


# ---------------------------------------------------------------------------------------------
# plot


def plot_validation(result: Mapping[str, Any], path: str | os.PathLike,
                    title: str = "") -> Path:
    """Draw the parity plot of :func:`validate_table`'s result.

    Predicted vs experimental ΔG with the identity line and a ±1 kcal/mol band; written atomically
    (PNG/PDF/SVG by suffix).
    """
    from common.plots import pyplot, save_figure

    plt = pyplot()
    e = np.array([r["dG_exp_kcal_per_mol"] for r in result["rows"]])
    p = np.array([r["dG_pred_kcal_per_mol"] for r in result["rows"]])
    lo, hi = float(min(e.min(), p.min())) - 1.0, float(max(e.max(), p.max())) + 1.0
    fig, ax = plt.subplots(figsize=(4.6, 4.4))
    line = np.array([lo, hi])
    ax.fill_between(line, line - 1.0, line + 1.0, color="0.9", label="±1 kcal/mol")
    ax.plot(line, line, color="0.4", lw=1, label="identity")
    ax.scatter(e, p, s=18, color="tab:blue", zorder=3)
    ax.set(xlim=(lo, hi), ylim=(lo, hi), aspect="equal", title=title,
           xlabel="ΔG experimental (kcal/mol)", ylabel="ΔG predicted (kcal/mol)")
    ax.text(0.03, 0.97, _metrics_text(result), transform=ax.transAxes, va="top", fontsize=8)
    ax.legend(loc="lower right", fontsize=8)
    return save_figure(fig, path, dpi=150)


def _metrics_text(result: Mapping[str, Any]) -> str:
    def fmt(key: str, label: str) -> str:
        v = result.get(key)
        return f"{label} = {v:.2f}" if v is not None else f"{label} = n/a"

    return "\n".join([f"n = {result['n']}", fmt("r2", "R²"), fmt("kendall_tau", "τ"),
                      fmt("rmse_kcal_per_mol", "RMSE"), fmt("mae_kcal_per_mol", "MAE")])


# ---------------------------------------------------------------------------------------------
# benchmark sets shipped with openmmforcefields

_JACS_DIR = ("data", "perses_jacs_systems")
_SDF_TAGS = ("r_user_dG.exp", "r_exp_dg")


def _jacs_root(data_dir: str | os.PathLike | None) -> Path:
    if data_dir is not None:
        root = Path(data_dir)
        if not root.is_dir():
            raise ConfigError("folder not found", where=str(root),
                              fix="give the perses_jacs_systems folder of openmmforcefields")
        return root
    import importlib.util

    spec = importlib.util.find_spec("openmmforcefields")
    locs = list(spec.submodule_search_locations or []) if spec else []
    for loc in locs:
        root = Path(loc).joinpath(*_JACS_DIR)
        if root.is_dir():
            return root
    raise EnvironmentProblem("the JACS benchmark sets come with openmmforcefields, which is "
                             "not installed (or ships no perses_jacs_systems data)",
                             where="benchmark_set",
                             fix="install openmmforcefields, or give data_dir= the folder")


def _set_file(root: Path, name: str) -> Path | None:
    """Find the ligand SDF of one target (unshifted copy preferred; ``p38`` also finds ``p38a``)."""
    for folder in (root / name, root / f"{name}a"):
        files = sorted(folder.glob("*_ligands*.sdf"), key=lambda f: ("shifted" in f.name, f.name))
        if files:
            return files[0]
    return None


def benchmark_sets(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Names of the benchmark sets found (e.g. ``bace``, ``cdk2``, ..., ``tyk2``)."""
    root = _jacs_root(data_dir)
    names = {d.name.removesuffix("a") if d.name == "p38a" else d.name
             for d in root.iterdir() if d.is_dir() and _set_file(root, d.name)}
    return sorted(names)


def _sdf_records(text: str) -> Iterable[tuple[str, dict[str, str]]]:
    """``(title, {tag: first value line})`` per molecule of an SD file."""
    for block in text.split("$$$$"):
        lines = block.strip("\r\n").splitlines()
        if not any(line.strip() for line in lines):
            continue
        tags: dict[str, str] = {}
        for k, line in enumerate(lines):
            if line.startswith(">") and "<" in line and k + 1 < len(lines):
                tags[line.split("<", 1)[1].split(">", 1)[0]] = lines[k + 1].strip()
        yield lines[0].strip(), tags


def benchmark_files(name: str, data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """Find the files of one JACS benchmark set: its folder, protein PDB and ligand SDF.

    Returns
    -------
    dict
        ``{"folder", "protein_pdb", "ligands_sdf"}``; the SDF holds every ligand's 3-D pose in
        the protein's pocket (the ``*_shifted.sdf`` copies are the poses moved into the PDB's
        frame, used where they are the only copy) and the experimental ΔG tags.

    Raises
    ------
    ConfigError
        No such set.
    DataError
        The set's folder has no ``*_protein.pdb``.
    """
    root = _jacs_root(data_dir)
    sdf = _set_file(root, str(name).strip().lower())
    if sdf is None:
        raise ConfigError(f"no benchmark set {name!r}", where=str(root),
                          fix=f"choose one of {benchmark_sets(root)}")
    pdbs = sorted(sdf.parent.glob("*_protein.pdb"))
    if not pdbs:
        raise DataError("no *_protein.pdb beside the ligands", where=str(sdf.parent),
                        fix="use the folders shipped with openmmforcefields")
    return {"folder": sdf.parent, "protein_pdb": pdbs[0], "ligands_sdf": sdf}


def benchmark_set(name: str, data_dir: str | os.PathLike | None = None) -> list[dict]:
    """Experimental ΔG of one JACS 2015 benchmark set, in the file's order.

    Parameters
    ----------
    name
        Target, case-insensitive: ``bace``, ``cdk2``, ``jnk1``, ``mcl1``, ``p38``,
        ``ptp1b``, ``thrombin``, ``tyk2`` (see :func:`benchmark_sets`).
    data_dir
        The ``perses_jacs_systems`` folder; default: the one inside openmmforcefields.

    Returns
    -------
    list of dict
        ``{"name", "dG_exp_kcal_per_mol"}`` per ligand (SD tag ``r_user_dG.exp`` or
        ``r_exp_dg``), ready to be joined with predictions for :func:`validate_table`.
    """
    root = _jacs_root(data_dir)
    key = str(name).strip().lower()
    sdf = _set_file(root, key)
    if sdf is None:
        raise ConfigError(f"no benchmark set {name!r}", where=str(root),
                          fix=f"choose one of {benchmark_sets(root)}")
    rows = []
    for title, tags in _sdf_records(sdf.read_text(errors="replace")):
        value = next((tags[t] for t in _SDF_TAGS if t in tags), None)
        try:
            dg = float(value) if value is not None else math.nan
        except ValueError:
            dg = math.nan
        if not math.isfinite(dg):
            raise DataError(f"ligand {title!r} has no experimental ΔG tag {_SDF_TAGS}",
                            where=str(sdf), fix="use the SD files shipped with the benchmark")
        rows.append({"name": title, "dG_exp_kcal_per_mol": dg})
    return rows
