"""Rate constants over temperature: Arrhenius fits, branching, plots and a KPP/MCM mechanism.

* :func:`fit_arrhenius` -- weighted least squares of ``ln k`` against ``1/T`` (and
  ``ln(T/300)`` for the modified form ``k = A (T/300)^n exp(-Ea/RT)``), weights
  ``1/sigma_lnk^2 = (k/sigma_k)^2``; the parameter covariance is ``(X^T W X)^-1`` with the
  errors taken as absolute (binomial QCT errors are), or scaled by the residual variance
  when no errors are given. Ea in kcal/mol, eV and as E/R in K.
* :func:`fit_channels` / :func:`branching_vs_temperature` -- the same for every channel of
  a list of :func:`atmospheric.qct.run_qct` results, and branching fractions against T.
* :func:`plot_arrhenius` -- ln k against 1000/T with the fits (matplotlib, Agg backend).
* :func:`mechanism_lines` / :func:`export_kinetics` -- one KPP/MCM equation per channel,
  ``{1.} OH + C5H8 = ISOPOH_C1 : 2.70D-11*EXP(390/TEMP) ;`` (E in K; the modified form as
  ``A*(TEMP/300)@n*EXP(-E/TEMP)``, ``@`` being KPP's power operator), beside JSON and CSV,
  every file written atomically.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from common.errors import ConfigError, DataError
from common.fileio import atomic_write_json, atomic_write_text

__all__ = [
    "ArrheniusFit",
    "branching_vs_temperature",
    "export_kinetics",
    "fit_arrhenius",
    "fit_channels",
    "kpp_species",
    "mechanism_lines",
    "plot_arrhenius",
]

#: gas constant, kcal mol^-1 K^-1 (CODATA 2018: 8.314462618 J/mol/K / 4184 J/kcal)
R_KCAL_PER_MOL_K = 8.314462618 / 4184.0
#: Boltzmann constant, eV/K (CODATA 2018)
KB_EV_PER_K = 8.617333262e-5


@dataclass(frozen=True)
class ArrheniusFit:
    """``k(T) = A (T/T_ref)^n exp(-E_over_R / T)`` (``n = 0`` for the plain form).

    ``A`` carries the units of the rates fitted (cm^3 molecule^-1 s^-1 for QCT results);
    errors are one standard error (``None`` where the data cannot give one).
    """

    A_cm3_per_molecule_s: float
    A_err_cm3_per_molecule_s: float | None
    E_over_R_K: float
    E_over_R_err_K: float | None
    n: float
    n_err: float | None
    modified: bool
    T_ref_K: float
    n_points: int
    chi2_reduced: float | None
    cov_lnA_E_over_R_K: float | None

    @property
    def Ea_kcal_per_mol(self) -> float:
        """Activation energy Ea, kcal/mol."""
        return self.E_over_R_K * R_KCAL_PER_MOL_K

    @property
    def Ea_err_kcal_per_mol(self) -> float | None:
        """Standard error of Ea, kcal/mol (None without one)."""
        return None if self.E_over_R_err_K is None else self.E_over_R_err_K * R_KCAL_PER_MOL_K

    @property
    def Ea_eV(self) -> float:
        """Activation energy Ea, eV."""
        return self.E_over_R_K * KB_EV_PER_K

    @property
    def Ea_err_eV(self) -> float | None:
        """Standard error of Ea, eV (None without one)."""
        return None if self.E_over_R_err_K is None else self.E_over_R_err_K * KB_EV_PER_K

    def rate(self, temperature_K) -> np.ndarray:
        """Return k at ``temperature_K`` (scalar or array), in the units of A."""
        t = np.asarray(temperature_K, dtype=float)
        return self.A_cm3_per_molecule_s * (t / self.T_ref_K) ** self.n \
            * np.exp(-self.E_over_R_K / t)

    def kpp_expression(self) -> str:
        """Return the KPP/MCM rate expression, e.g. ``2.70D-11*EXP(390/TEMP)``."""
        out = _fortran(self.A_cm3_per_molecule_s)
        if self.modified:
            out += f"*(TEMP/{self.T_ref_K:g})@{self.n:.2f}"
        if round(self.E_over_R_K) != 0:
            out += f"*EXP({-self.E_over_R_K:.0f}/TEMP)"
        return out

    def to_dict(self) -> dict:
        """Return the fit's fields and the derived Ea values as a plain dict."""
        d = asdict(self)
        d.update(Ea_kcal_per_mol=self.Ea_kcal_per_mol,
                 Ea_err_kcal_per_mol=self.Ea_err_kcal_per_mol, Ea_eV=self.Ea_eV,
                 Ea_err_eV=self.Ea_err_eV, kpp=self.kpp_expression())
        return d


def _fortran(x: float) -> str:
    """``2.70D-11``: three significant digits, Fortran double exponent."""
    mant, exp = f"{x:.2E}".split("E")
    return f"{mant}D{int(exp)}"


def _check_data(temperatures_K, rates, rate_errors, need: int, form: str
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    t = np.asarray(temperatures_K, dtype=float).ravel()
    k = np.asarray(rates, dtype=float).ravel()
    if len(t) != len(k) or (rate_errors is not None and len(np.ravel(rate_errors)) != len(t)):
        raise ConfigError(f"{len(t)} temperatures but {len(k)} rates"
                          + ("" if rate_errors is None else f" and {len(np.ravel(rate_errors))}"
                             " errors"), where="rates", fix="give one rate (and error) per T")
    n_t = len(np.unique(t))
    if n_t < need:
        listed = ", ".join(f"{x:g}" for x in np.unique(t)) or "none"
        raise ConfigError(f"a {form} Arrhenius fit needs at least {need} temperatures (got "
                          f"{n_t}: {listed} K)", where="temperature_K",
                          fix=f"run at {need} or more temperatures, e.g. 250 300 350"
                          + (" 400" if need > 3 else ""))
    if not (np.isfinite(t).all() and (t > 0).all()):
        raise ConfigError("temperatures must be finite and > 0 K", where="temperature_K",
                          fix="give temperatures in K")
    for ti, ki in zip(t, k, strict=True):
        if not (math.isfinite(ki) and ki > 0):
            raise DataError(f"rate at {ti:g} K is {ki:g}: ln k is undefined", where="rates",
                            fix="run more trajectories at that temperature, or leave it out")
    if rate_errors is None:
        return t, k, None
    s = np.asarray(rate_errors, dtype=float).ravel()
    if not (np.isfinite(s).all() and (s > 0).all()):
        bad = int(np.flatnonzero(~(np.isfinite(s) & (s > 0)))[0])
        raise DataError(f"rate error at {t[bad]:g} K is {s[bad]:g}: weights need errors > 0",
                        where="rate_errors", fix="give positive errors, or none (unweighted)")
    return t, k, s


def fit_arrhenius(temperatures_K: Sequence[float], rates: Sequence[float],
                  rate_errors: Sequence[float] | None = None, *, modified: bool = False,
                  T_ref_K: float = 300.0) -> ArrheniusFit:
    """Arrhenius (or modified Arrhenius) parameters of k(T) by weighted least squares.

    Parameters
    ----------
    temperatures_K
        Temperatures, K (at least 2 distinct; 3 for ``modified``).
    rates, rate_errors
        k at each temperature (> 0) and its standard error (same units); without errors the
        fit is unweighted and its errors come from the scatter (3+ / 4+ points needed).
    modified
        Fit ``k = A (T/T_ref)^n exp(-Ea/RT)`` instead of ``k = A exp(-Ea/RT)``.

    Raises
    ------
    ConfigError
        Too few temperatures, mismatched lengths, T <= 0.
    DataError
        A rate <= 0 (no reactive trajectories) or an error <= 0.
    """
    p = 3 if modified else 2
    t, k, s = _check_data(temperatures_K, rates, rate_errors, p,
                          "modified" if modified else "plain")
    cols = [np.ones_like(t), -1.0 / t] + ([np.log(t / T_ref_K)] if modified else [])
    x, y = np.stack(cols, 1), np.log(k)
    w = np.ones_like(t) if s is None else (k / s) ** 2
    xtw = x.T * w
    cov = np.linalg.inv(xtw @ x)
    beta = cov @ (xtw @ y)
    dof = len(t) - p
    chi2 = float(((y - x @ beta) ** 2 * w).sum() / dof) if dof > 0 else None
    if s is None:
        cov = cov * chi2 if chi2 is not None else None
    err = (lambda i: None) if cov is None else (lambda i: float(math.sqrt(cov[i, i])))
    a = float(math.exp(beta[0]))
    return ArrheniusFit(
        A_cm3_per_molecule_s=a, A_err_cm3_per_molecule_s=None if cov is None else a * err(0),
        E_over_R_K=float(beta[1]), E_over_R_err_K=err(1),
        n=float(beta[2]) if modified else 0.0, n_err=err(2) if modified else None,
        modified=modified, T_ref_K=float(T_ref_K), n_points=len(t),
        chi2_reduced=chi2 if s is not None else None,
        cov_lnA_E_over_R_K=None if cov is None else float(cov[0, 1]))


# ---------------------------------------------------------------------------------------------
# QCT results over temperature


def _sorted_results(results: Sequence[Mapping]) -> list[Mapping]:
    if not results:
        raise ConfigError("no QCT results given", where="results",
                          fix="give the run_qct results of each temperature")
    return sorted(results, key=lambda r: float(r["temperature_K"]))


def _channel_names(results: Sequence[Mapping]) -> list[str]:
    return list(dict.fromkeys(name for r in results for name in r.get("channels", {})))


def branching_vs_temperature(results: Sequence[Mapping]) -> dict:
    """Branching fractions of every channel against T from :func:`run_qct` results.

    Returns ``{"temperatures_K": [...], "channels": {name: {"n", "fraction",
    "fraction_err", "rate_cm3_per_molecule_s", "rate_err_cm3_per_molecule_s"}}}``, lists in
    the order of the temperatures; ``fraction_err`` is the binomial standard error
    ``sqrt(f (1 - f) / n_reactive)``, fractions ``None`` where nothing reacted.
    """
    res = _sorted_results(results)
    out: dict = {"temperatures_K": [float(r["temperature_K"]) for r in res], "channels": {}}
    for name in _channel_names(res):
        cols: dict[str, list] = {"n": [], "fraction": [], "fraction_err": [],
                                 "rate_cm3_per_molecule_s": [],
                                 "rate_err_cm3_per_molecule_s": []}
        for r in res:
            ch = r.get("channels", {}).get(name, {})
            n, n_r = int(ch.get("n", 0)), int(r["n_reactive"])
            f = n / n_r if n_r else None
            cols["n"].append(n)
            cols["fraction"].append(f)
            cols["fraction_err"].append(math.sqrt(f * (1 - f) / n_r) if n_r else None)
            cols["rate_cm3_per_molecule_s"].append(ch.get("rate_cm3_per_molecule_s", 0.0))
            cols["rate_err_cm3_per_molecule_s"].append(ch.get("rate_err_cm3_per_molecule_s"))
        out["channels"][name] = cols
    return out


def _fit_or_reason(t, k, s, modified: bool) -> tuple[ArrheniusFit | None, str | None, list]:
    """Fit the points with k > 0; (fit, None, dropped T) or (None, why, dropped T)."""
    keep = [i for i, ki in enumerate(k) if ki and ki > 0]
    dropped = [t[i] for i in range(len(t)) if i not in keep]
    try:
        fit = fit_arrhenius([t[i] for i in keep], [k[i] for i in keep],
                            None if s is None else [s[i] for i in keep], modified=modified)
    except (ConfigError, DataError) as exc:
        return None, exc.what, dropped
    return fit, None, dropped


def fit_channels(results: Sequence[Mapping], *, modified: bool = False) -> dict:
    """Arrhenius fits of the total rate and of every channel of :func:`run_qct` results.

    Temperatures where a channel never occurred (k = 0) are left out of that channel's fit
    and listed in ``dropped_temperatures_K``; a channel seen at too few temperatures gets
    ``fit: None`` and the reason. The total fit raises the errors of :func:`fit_arrhenius`.
    """
    res = _sorted_results(results)
    t = [float(r["temperature_K"]) for r in res]
    total = fit_arrhenius(t, [r["rate_cm3_per_molecule_s"] for r in res],
                          _errors([r.get("rate_err_cm3_per_molecule_s") for r in res]),
                          modified=modified)
    br = branching_vs_temperature(res)
    channels = {}
    for name, col in br["channels"].items():
        fit, why, dropped = _fit_or_reason(t, col["rate_cm3_per_molecule_s"],
                                           _errors(col["rate_err_cm3_per_molecule_s"]),
                                           modified)
        channels[name] = {"fit": None if fit is None else fit.to_dict(), "reason": why,
                          "dropped_temperatures_K": dropped, "_fit": fit}
    return {"total": total, "channels": channels, "branching": br}


def _errors(values: Sequence) -> list[float] | None:
    """Errors usable as weights, or None (unweighted) if any is missing or zero."""
    if any(v is None or not v > 0 for v in values):
        return None
    return [float(v) for v in values]


# ---------------------------------------------------------------------------------------------
# plot


def plot_arrhenius(path: str | Path, temperatures_K: Sequence[float], rates: Sequence[float],
                   rate_errors: Sequence[float] | None = None, fit: ArrheniusFit | None = None,
                   *, channels: Mapping[str, tuple] | None = None,
                   title: str = "") -> Path:
    """Arrhenius plot: k (log scale) against 1000/T with error bars and fitted lines.

    ``channels``: ``{name: (temperatures_K, rates, errors, fit)}`` drawn beside the total.
    Written atomically (PNG, or the format of ``path``'s suffix).
    """
    from common.plots import pyplot, save_figure

    plt = pyplot()

    fig, ax = plt.subplots(figsize=(5.0, 3.8))
    series = {"total": (temperatures_K, rates, rate_errors, fit), **(channels or {})}
    for k, (name, (t, r, e, f)) in enumerate(series.items()):
        t, r = np.asarray(t, float), np.asarray(r, float)
        ok = r > 0
        color = f"C{k}"
        ax.errorbar(1000.0 / t[ok], r[ok], yerr=None if e is None else np.asarray(e)[ok],
                    fmt="o", color=color, capsize=3, label=name)
        if f is not None:
            tt = np.linspace(t.min(), t.max(), 100)
            ax.plot(1000.0 / tt, f.rate(tt), "-", color=color,
                    label=f"{name}: Ea = {f.Ea_kcal_per_mol:.2f} kcal/mol")
    ax.set_yscale("log")
    ax.set_xlabel("1000 / T (1/K)")
    ax.set_ylabel("k (cm$^3$ molecule$^{-1}$ s$^{-1}$)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=150)


# ---------------------------------------------------------------------------------------------
# mechanism export

def kpp_species(name: str) -> str:
    """Make ``name`` a KPP species name.

    Only letters, digits and ``_``, a letter first, < 32 characters.
    """
    s = re.sub(r"[^A-Za-z0-9_]+", "_", name.strip()).strip("_")
    if not s or not s[0].isalpha():
        s = "X" + s
    return s[:31]


def _products(channel: str, products: Mapping[str, str | Sequence[str]] | None) -> str:
    given = (products or {}).get(channel)
    if given is None:
        given = channel.split(" + ")
    if isinstance(given, str):
        given = [given]
    return " + ".join(kpp_species(p) for p in given)


def mechanism_lines(reactants: Sequence[str], fits: Mapping[str, ArrheniusFit | None],
                    products: Mapping[str, str | Sequence[str]] | None = None,
                    first: int = 1) -> list[str]:
    """Write one KPP/MCM equation per channel with a fit.

    E.g. ``{1.} OH + C5H8 = ISOPOH_C1 : 2.70D-11*EXP(390/TEMP) ;``.

    ``products``: ``{channel: "NAME"}`` or ``{channel: ["P1", "P2"]}``; by default the
    channel's name (split at `` + ``), made into KPP species names.
    """
    if not reactants:
        raise ConfigError("no reactant names for the mechanism", where="reactants",
                          fix="give the two reactants' names, e.g. OH C5H8")
    lhs = " + ".join(kpp_species(r) for r in reactants)
    lines, k = [], first
    for name, fit in fits.items():
        if fit is None:
            continue
        lines.append(f"{{{k}.}} {lhs} = {_products(name, products)} : "
                     f"{fit.kpp_expression()} ;")
        k += 1
    return lines


def _csv_text(fitted: dict) -> str:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["temperature_K", "channel", "n", "fraction", "fraction_err",
                "rate_cm3_per_molecule_s", "rate_err_cm3_per_molecule_s"])
    br = fitted["branching"]
    for name, col in br["channels"].items():
        for i, t in enumerate(br["temperatures_K"]):
            w.writerow([t, name, col["n"][i], _blank(col["fraction"][i]),
                        _blank(col["fraction_err"][i]), col["rate_cm3_per_molecule_s"][i],
                        _blank(col["rate_err_cm3_per_molecule_s"][i])])
    return buf.getvalue()


def _blank(x):
    return "" if x is None else x


def export_kinetics(outdir: str | Path, results: Sequence[Mapping], reactants: Sequence[str],
                    *, modified: bool = False,
                    products: Mapping[str, str | Sequence[str]] | None = None,
                    plot: bool = True) -> dict:
    """Fit k(T) of QCT results and write the kinetics files into ``outdir``.

    The files are ``kinetics.json``, ``rates.csv``, ``mechanism.kpp`` (one equation per channel)
    and ``arrhenius.png``.

    Returns the JSON written: the total fit (A, Ea in kcal/mol and eV, E/R in K, n), each
    channel's fit, the branching table and the mechanism lines.
    """
    outdir = Path(outdir)
    fitted = fit_channels(results, modified=modified)
    res = _sorted_results(results)
    fits = {name: ch.pop("_fit") for name, ch in fitted["channels"].items()}
    lines = mechanism_lines(reactants, fits, products)
    header = (f"// {' + '.join(reactants)}: QCT rate constants, "
              f"{'modified ' if modified else ''}Arrhenius fits over "
              f"{fitted['branching']['temperatures_K'][0]:g}-"
              f"{fitted['branching']['temperatures_K'][-1]:g} K (written by mlp-cases)\n")
    files = {"json": outdir / "kinetics.json", "csv": outdir / "rates.csv",
             "mechanism": outdir / "mechanism.kpp"}
    atomic_write_text(files["mechanism"], header + "#EQUATIONS\n" + "\n".join(lines) + "\n")
    atomic_write_text(files["csv"], _csv_text(fitted))
    if plot:
        t = fitted["branching"]["temperatures_K"]
        chans = {name: (t, col["rate_cm3_per_molecule_s"],
                        _errors(col["rate_err_cm3_per_molecule_s"]), fits[name])
                 for name, col in fitted["branching"]["channels"].items()
                 if fits[name] is not None and len(fits) > 1}
        files["plot"] = plot_arrhenius(
            outdir / "arrhenius.png", t, [r["rate_cm3_per_molecule_s"] for r in res],
            _errors([r.get("rate_err_cm3_per_molecule_s") for r in res]), fitted["total"],
            channels=chans, title=" + ".join(reactants))
    out = {"reactants": list(reactants), "modified": modified,
           "total": fitted["total"].to_dict(), "channels": fitted["channels"],
           "branching": fitted["branching"], "mechanism": lines,
           "files": {k: str(v) for k, v in files.items()}}
    atomic_write_json(files["json"], out)
    return out
