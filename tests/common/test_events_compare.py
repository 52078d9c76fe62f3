"""common.events.compare on synthetic event data with known rates: interval coverage, the rate
ratio when rates are equal and when they differ, and the log-rank test's size and power."""

import numpy as np
import pytest

from common.errors import ConfigError
from common.events.compare import (
    logrank_test,
    poisson_interval,
    rate_ratio,
    reaction_label,
)


def test_poisson_interval_known_values_and_coverage():
    # Garwood interval for n = 0 and n = 10 in unit time (tabulated values)
    assert poisson_interval(0, 1.0) == pytest.approx((0.0, 3.6889), abs=1e-4)
    assert poisson_interval(10, 2.0) == pytest.approx((4.7954 / 2, 18.3904 / 2), abs=1e-4)
    rng = np.random.default_rng(0)
    rate, t = 3.0, 2.5
    hits = 0
    for n in rng.poisson(rate * t, 2000):
        lo, hi = poisson_interval(int(n), t)
        hits += lo <= rate <= hi
    assert hits / 2000 >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 2000)  # exact: conservative


@pytest.mark.parametrize("true_ratio", [1.0, 3.0])
def test_rate_ratio_interval_covers_the_true_ratio(true_ratio):
    """Rates a = true_ratio * b, different exposures: the 95 % interval covers the truth in
    >= 95 % of 2000 synthetic experiments (exact conditional interval, conservative) and, for a
    true ratio of 3, excludes 1 most of the time (power)."""
    rng = np.random.default_rng(1)
    ta, tb, rb = 4.0, 10.0, 1.5
    cover = exclude_one = 0
    for _ in range(2000):
        na, nb = rng.poisson(true_ratio * rb * ta), rng.poisson(rb * tb)
        r = rate_ratio(int(na), ta, int(nb), tb)
        cover += r.contains(true_ratio)
        exclude_one += not r.contains(1.0)
    assert cover / 2000 >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / 2000)
    if true_ratio == 3.0:
        assert exclude_one / 2000 > 0.75  # measured 0.83 (na ~ 18, nb ~ 15 events)


def test_rate_ratio_edge_cases():
    r = rate_ratio(0, 1.0, 0, 1.0)
    assert r.ratio is None and r.ci == (None, None) and r.contains(1.0)
    r = rate_ratio(5, 1.0, 0, 1.0)
    assert r.ratio is None and r.ci[1] is None and r.ci[0] > 0
    with pytest.raises(ConfigError, match="positive time"):
        rate_ratio(1, 0.0, 1, 1.0)


def _exp_sample(rng, rate, n, t_end):
    t = rng.exponential(1 / rate, n)
    return np.minimum(t, t_end), t < t_end


def test_logrank_size_and_power():
    """Equal hazards: p < 0.05 in ~5 % of 1000 synthetic pairs (within 3 binomial SE); hazards
    2x apart with 60 trajectories each: detected (p < 0.05) in > 80 %."""
    rng = np.random.default_rng(2)
    false_pos = power = 0
    for _ in range(1000):
        a, b = _exp_sample(rng, 1.0, 60, 1.5), _exp_sample(rng, 1.0, 60, 1.5)
        false_pos += logrank_test(*a, *b).p_value < 0.05
        a, b = _exp_sample(rng, 2.0, 60, 1.5), _exp_sample(rng, 1.0, 60, 1.5)
        power += logrank_test(*a, *b).p_value < 0.05
    assert abs(false_pos / 1000 - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 1000)
    assert power / 1000 > 0.8


def test_logrank_known_example():
    # identical samples: no difference at all
    r = logrank_test([1, 2, 3], [1, 1, 0], [1, 2, 3], [1, 1, 0])
    assert r.chi2 == pytest.approx(0.0) and r.p_value == pytest.approx(1.0)
    assert r.observed_a == 2 and r.expected_a == pytest.approx(2.0)


def test_reaction_label():
    assert reaction_label(["*CO"], ["*C", "*O"]) == "*CO → *C + *O"
