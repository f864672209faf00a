import math

import pytest
import torch

from recap import rl
from recap.errors import SchemaError


@pytest.mark.parametrize("fraction", [0.3, 0.4])
def test_indicator_fraction_exact_with_heavy_ties(fraction):
    g = torch.Generator().manual_seed(0)
    # 60% of the points share one value: no strict threshold gives 30% or 40%.
    adv = torch.cat([torch.zeros(600), torch.linspace(-1, 1, 400)])
    ind, eps = rl.indicators_for_fraction(adv, fraction, g)
    assert abs(ind.float().mean().item() - fraction) <= 0.01
    assert (adv[ind] >= eps - 1e-12).all()  # positives are never below the threshold


def test_threshold_without_ties_is_strict():
    adv = torch.arange(10.0)
    eps = rl.threshold_for_fraction(adv, 0.3)
    assert eps == 6.5
    assert rl.apply_threshold(adv, eps).sum() == 3


def test_interventions_forced_positive():
    ind = torch.tensor([False, True, False])
    assert rl.force_interventions(ind, torch.tensor([True, False, False])).tolist() == [True, True, False]


def test_success_rate_and_throughput_by_hand():
    s = torch.tensor([True, False, True, True])
    d = torch.tensor([10.0, 20.0, 10.0, 20.0])  # 60 s of robot time
    assert rl.throughput_per_hour(s, d) == pytest.approx(3 / 60 * 3600)
    assert rl.mean_time_to_success(s, d) == pytest.approx(40 / 3)
    p, lo, hi = rl.success_rate(s)
    assert p == 0.75 and 0.2 < lo < 0.75 < hi <= 1.0
    v, lo, hi = rl.throughput_ci(s, d)
    assert lo <= v <= hi
    assert math.isnan(rl.mean_time_to_success(torch.tensor([False]), torch.tensor([1.0])))


@pytest.mark.parametrize(
    ("successes", "n", "low", "high"),
    [
        # Wilson score interval, z = 1.96: centre (p + z^2/2n) / (1 + z^2/n), half-width
        # z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n); worked by hand (and matching published tables)
        (3, 4, 0.30064, 0.95441),  # Wald: [0.3257, 1.1743] clipped to 1
        (5, 10, 0.23659, 0.76341),  # Wald: [0.1901, 0.8099]
        (0, 10, 0.0, 0.27753),  # upper = z^2 / (n + z^2); Wald collapses to [0, 0]
        (10, 10, 0.72247, 1.0),  # lower = n / (n + z^2); Wald collapses to [1, 1]
    ],
)
def test_success_rate_interval_is_wilson_pinned_by_hand(successes, n, low, high):
    outcomes = torch.tensor([True] * successes + [False] * (n - successes))
    p, lo, hi = rl.success_rate(outcomes)
    assert p == successes / n
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_metric_errors():
    with pytest.raises(SchemaError, match="non-empty"):
        rl.success_rate(torch.tensor([], dtype=torch.bool))
    with pytest.raises(SchemaError, match="one per episode"):
        rl.throughput_per_hour(torch.tensor([True]), torch.tensor([1.0, 2.0]))
    with pytest.raises(SchemaError, match="empty"):
        rl.threshold_for_fraction(torch.tensor([]), 0.3)


def test_mean_ci_across_runs_is_a_student_t_interval():
    from recap.rl import mean_ci

    mean, lo, hi = mean_ci([0.4, 0.6])  # std 0.1414, t(1) = 12.706: half width 12.706 * 0.1414 / sqrt(2)
    assert (
        mean == pytest.approx(0.5)
        and hi - mean == pytest.approx(1.2706)
        and mean - lo == pytest.approx(1.2706)
    )
    mean, lo, hi = mean_ci([1.0, 2.0, 3.0, 4.0, 5.0])  # std 1.5811, t(4) = 2.776
    assert (lo, hi) == (
        pytest.approx(3 - 2.776 * 1.5811 / 5**0.5, abs=1e-3),
        pytest.approx(3 + 1.9629, abs=1e-3),
    )
    assert mean_ci([7.0, 7.0, 7.0]) == (7.0, 7.0, 7.0)
    single = mean_ci([0.3])
    assert single[0] == 0.3 and math.isnan(single[1]) and math.isnan(single[2])
    with pytest.raises(SchemaError):
        mean_ci([])
