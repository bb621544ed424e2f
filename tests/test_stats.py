"""Tests for the bootstrap statistics: confidence intervals, win rates, paired differences."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from inspo_plugin.evaluation.stats import bootstrap_ci, paired_difference, win_rate


def _normal_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Independent reference: mean ± z · sd / sqrt(n), z from the standard library."""
    z = statistics.NormalDist().inv_cdf(0.5 + confidence / 2)
    half = z * statistics.stdev(values.tolist()) / len(values) ** 0.5
    mean = statistics.fmean(values.tolist())
    return mean - half, mean + half


@pytest.mark.parametrize("kind", ["bernoulli", "gaussian"])
def test_bootstrap_matches_normal_approximation_on_a_large_sample(kind: str) -> None:
    rng = np.random.default_rng(123)
    values = rng.random(3000) < 0.3 if kind == "bernoulli" else rng.normal(2.0, 1.5, size=3000)
    values = values.astype(float)
    low, high = bootstrap_ci(values, n_resamples=4000, seed=7)
    ref_low, ref_high = _normal_interval(values)
    width = ref_high - ref_low
    assert low < values.mean() < high
    # percentile bootstrap and the normal interval agree to a few percent of the width at n = 3000
    assert abs(low - ref_low) < 0.06 * width
    assert abs(high - ref_high) < 0.06 * width


def test_bootstrap_confidence_level_changes_width() -> None:
    values = np.random.default_rng(0).normal(size=500)
    l90, h90 = bootstrap_ci(values, confidence=0.90, n_resamples=3000)
    l99, h99 = bootstrap_ci(values, confidence=0.99, n_resamples=3000)
    ratio = (h99 - l99) / (h90 - l90)
    # normal quantiles: 2.576 / 1.645 = 1.566
    assert ratio == pytest.approx(1.566, rel=0.08)


def test_bootstrap_is_deterministic_for_a_seed() -> None:
    values = [0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.0]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    low, high = bootstrap_ci(values, seed=3)
    assert 0.0 <= low < 0.625 < high <= 1.0
    continuous = np.random.default_rng(5).normal(size=40)
    assert bootstrap_ci(continuous, seed=3) == bootstrap_ci(continuous, seed=3)
    assert bootstrap_ci(continuous, seed=3) != bootstrap_ci(continuous, seed=4)


def test_bootstrap_chunking_does_not_change_the_distribution() -> None:
    # 5000 values force several chunks; the result must still bracket the mean tightly
    values = np.random.default_rng(1).random(5000)
    low, high = bootstrap_ci(values, n_resamples=1000, seed=0)
    assert low < values.mean() < high
    assert high - low < 0.04


def test_bootstrap_degenerate_cases() -> None:
    assert bootstrap_ci([1.0]) == (1.0, 1.0)
    assert bootstrap_ci([True, True, True]) == (1.0, 1.0)
    assert bootstrap_ci([0.25] * 10) == (0.25, 0.25)
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_ci([1.0, float("nan")])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([0.0, 1.0], confidence=1.5)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci([0.0, 1.0], n_resamples=0)


def test_win_rate_arithmetic() -> None:
    cand = [True, True, False, False, True, True]
    base = [False, True, False, True, True, False]
    result = win_rate(cand, base, n_resamples=500)
    assert result["n"] == 6
    assert (result["wins"], result["losses"], result["ties"]) == (2, 1, 3)
    assert result["win_rate"] == pytest.approx((2 + 0.5 * 3) / 6)
    assert result["ci_low"] <= result["win_rate"] <= result["ci_high"]


def test_win_rate_extremes_and_floats() -> None:
    assert win_rate([1, 1, 1], [0, 0, 0])["win_rate"] == 1.0
    all_lost = win_rate([0, 0], [1, 1])
    assert all_lost["win_rate"] == 0.0
    assert (all_lost["ci_low"], all_lost["ci_high"]) == (0.0, 0.0)
    assert win_rate([0.2, 0.9], [0.2, 0.9])["win_rate"] == 0.5
    floats = win_rate([0.3, 0.8, 0.5], [0.1, 0.9, 0.5])
    assert (floats["wins"], floats["losses"], floats["ties"]) == (1, 1, 1)
    with pytest.raises(ValueError, match="equal lengths"):
        win_rate([1, 0], [1])
    with pytest.raises(ValueError, match="at least one"):
        win_rate([], [])


def test_paired_difference() -> None:
    result = paired_difference([1, 1, 0, 1], [0, 1, 0, 0], n_resamples=500)
    assert result["mean"] == pytest.approx(0.5)
    assert result["ci_low"] <= 0.5 <= result["ci_high"]
