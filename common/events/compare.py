"""Do two sets of trajectories show the same kinetics? Rates, their ratio and survival curves.

For comparing MLP-MD with direct reference MD (or two potentials, or two conditions) from the
events that :mod:`common.events` detects in each:

* :func:`poisson_interval` -- exact (Garwood) interval of a Poisson rate n/T;
* :func:`rate_ratio` -- the ratio of two Poisson rates with its exact conditional interval (given
  n_a + n_b events, n_a is binomial with p = r_a T_a / (r_a T_a + r_b T_b); Clopper-Pearson on
  p, mapped to the ratio);
* :func:`logrank_test` -- the log-rank test of two right-censored samples (e.g. the time to the
  first event of each trajectory), chi-squared with one degree of freedom;
* :func:`reaction_label` -- one event as a string, ``"*CO → *C + *O"``.

All intervals are two-sided at ``level`` (0.95 by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from common.errors import ConfigError

__all__ = ["LogRank", "RateRatio", "logrank_test", "poisson_interval", "rate_ratio",
           "reaction_label"]


def reaction_label(reactants: Sequence[str], products: Sequence[str]) -> str:
    """Return an event's reaction as the events JSON names it: ``"A + B → C"``."""
    return f"{' + '.join(reactants)} → {' + '.join(products)}"


def _check_exposure(t: float, name: str) -> float:
    t = float(t)
    if not np.isfinite(t) or t <= 0:
        raise ConfigError(f"{name} must be a positive time, got {t!r}", where=name,
                          fix="give the total simulated time the events were counted in")
    return t


def poisson_interval(n: int, exposure: float, level: float = 0.95) -> tuple[float, float]:
    """Exact (Garwood) interval of the rate of ``n`` events in ``exposure`` time units."""
    from scipy.stats import chi2

    t = _check_exposure(exposure, "exposure")
    if n < 0:
        raise ConfigError(f"an event count cannot be negative ({n})", where="n",
                          fix="give the number of events")
    alpha = 1.0 - level
    lo = 0.0 if n == 0 else chi2.ppf(alpha / 2, 2 * n) / 2
    hi = chi2.ppf(1 - alpha / 2, 2 * n + 2) / 2
    return float(lo / t), float(hi / t)


@dataclass(frozen=True)
class RateRatio:
    """Rates a = n_a/T_a and b = n_b/T_b, their ratio a/b and its interval.

    The ratio or an end of its interval is None where it is undefined: no events at all, or none
    in b for the upper end.
    """

    rate_a: float
    rate_b: float
    ratio: float | None
    ci: tuple[float | None, float | None]

    def contains(self, value: float = 1.0) -> bool:
        """Whether ``value`` lies in the interval (an open end counts as unbounded)."""
        lo, hi = self.ci
        return (lo is None or lo <= value) and (hi is None or value <= hi)


def rate_ratio(n_a: int, exposure_a: float, n_b: int, exposure_b: float,
               level: float = 0.95) -> RateRatio:
    """Return the ratio of two Poisson rates with its exact conditional interval.

    The interval is the Clopper-Pearson one, conditional on the total number of events.
    """
    from scipy.stats import beta

    ta = _check_exposure(exposure_a, "exposure_a")
    tb = _check_exposure(exposure_b, "exposure_b")
    ra, rb = n_a / ta, n_b / tb
    n = n_a + n_b
    if n == 0:
        return RateRatio(ra, rb, None, (None, None))
    alpha = 1.0 - level
    p_lo = 0.0 if n_a == 0 else beta.ppf(alpha / 2, n_a, n_b + 1)
    p_hi = 1.0 if n_b == 0 else beta.ppf(1 - alpha / 2, n_a + 1, n_b)
    scale = tb / ta

    def to_ratio(p: float) -> float | None:
        return None if p >= 1.0 else float(p / (1.0 - p) * scale)

    ratio = None if n_b == 0 else float(ra / rb)
    return RateRatio(ra, rb, ratio, (to_ratio(p_lo), to_ratio(p_hi)))


@dataclass(frozen=True)
class LogRank:
    """The log-rank statistic (chi-squared, 1 degree of freedom) and its p-value.

    Also the observed and expected numbers of events in sample a.
    """

    chi2: float
    p_value: float
    observed_a: int
    expected_a: float


def logrank_test(durations_a: Sequence[float], observed_a: Sequence[bool],
                 durations_b: Sequence[float], observed_b: Sequence[bool]) -> LogRank:
    """Test for equal hazards in two right-censored samples (log-rank test).

    ``observed`` False means censored at that time; a censoring at an event time is still at
    risk then.
    """
    from scipy.stats import chi2 as chi2_dist

    da, oa = np.asarray(durations_a, float), np.asarray(observed_a, bool)
    db, ob = np.asarray(durations_b, float), np.asarray(observed_b, bool)
    if da.shape != oa.shape or db.shape != ob.shape:
        raise ConfigError("durations and observed flags differ in length", where="logrank_test",
                          fix="give one observed flag per duration")
    if not len(da) or not len(db):
        raise ConfigError("each sample needs at least one duration", where="logrank_test",
                          fix="give durations for both samples")
    times = np.unique(np.concatenate([da[oa], db[ob]]))
    o_a = e_a = var = 0.0
    for t in times:
        n_a, n_b = (da >= t).sum(), (db >= t).sum()
        d_a, d_b = ((da == t) & oa).sum(), ((db == t) & ob).sum()
        n, d = n_a + n_b, d_a + d_b
        if n == 0:
            continue
        o_a += d_a
        e_a += d * n_a / n
        if n > 1:
            var += d * (n_a / n) * (n_b / n) * (n - d) / (n - 1)
    stat = (o_a - e_a) ** 2 / var if var > 0 else 0.0
    return LogRank(float(stat), float(chi2_dist.sf(stat, 1)), int(o_a), float(e_a))
