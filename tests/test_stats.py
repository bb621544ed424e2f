"""Tests for the bootstrap statistics: confidence intervals, win rates, paired differences."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from inspo_plugin.evaluation.stats import bootstrap_ci, paired_difference, paired_seed_difference, win_rate


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


# --- paired_seed_difference: two runs, several seeds, paired by (item, seed) -------------------


def _exact_two_way_bootstrap(diff: np.ndarray) -> np.ndarray:
    """Independent reference: the mean of every equally likely (seed draw, item draw), enumerated."""
    import itertools

    n_seeds, n_items = diff.shape
    means = [
        diff[np.ix_(seeds, items)].mean()
        for seeds in itertools.product(range(n_seeds), repeat=n_seeds)
        for items in itertools.product(range(n_items), repeat=n_items)
    ]
    return np.asarray(means)


def test_paired_seed_difference_matches_the_enumerated_bootstrap() -> None:
    rng = np.random.default_rng(11)
    a = rng.normal(size=(2, 4)) + np.array([[0.5], [-0.3]])
    b = rng.normal(size=(2, 4))
    result = paired_seed_difference(a, b, n_resamples=40_000, seed=2)
    exact = _exact_two_way_bootstrap(a - b)  # 2² · 4⁴ = 1024 resamples
    assert result["mean"] == pytest.approx(float((a - b).mean()), abs=1e-12)
    assert (result["mean_a"], result["mean_b"]) == (pytest.approx(a.mean()), pytest.approx(b.mean()))
    assert (result["n_seeds"], result["n_items"]) == (2, 4)
    assert result["se"] == pytest.approx(exact.std(), rel=0.03)
    low, high = np.quantile(exact, [0.025, 0.975])
    width = high - low
    assert abs(result["ci_low"] - low) < 0.03 * width
    assert abs(result["ci_high"] - high) < 0.03 * width


def test_paired_seed_difference_pairs_items_not_just_means() -> None:
    # A is B plus a small constant on every item: paired, the interval is tight and excludes zero,
    # although the items themselves vary far more than the effect.
    rng = np.random.default_rng(3)
    b = rng.normal(0.0, 5.0, size=(3, 50))
    a = b + 0.2 + rng.normal(0.0, 0.05, size=b.shape)
    result = paired_seed_difference(a, b, n_resamples=2000)
    assert 0.1 < result["ci_low"] < 0.2 < result["ci_high"] < 0.3
    # the same numbers with the pairing broken (B's items shuffled) no longer show the effect
    shuffled = paired_seed_difference(a, b[:, rng.permutation(50)], n_resamples=2000)
    assert shuffled["ci_low"] < 0.0 < shuffled["ci_high"]


def test_paired_seed_difference_covers_a_known_effect() -> None:
    # Pass/fail scores whose probability depends on the prompt and the seed; A is better by 0.1
    # (and, in the second half of the trials, by nothing).
    rng = np.random.default_rng(2024)
    covered, detected, false_alarms, trials = 0, 0, 0, 120
    for t in range(2 * trials):
        effect = 0.1 if t < trials else 0.0
        difficulty = rng.uniform(0.2, 0.7, size=132)
        seed_shift = rng.normal(0.0, 0.02, size=(3, 1))
        b = rng.random((3, 132)) < difficulty + seed_shift
        a = rng.random((3, 132)) < difficulty + seed_shift + effect
        result = paired_seed_difference(a, b, n_resamples=800, seed=t)
        covered += result["ci_low"] <= effect <= result["ci_high"]
        detected += effect > 0 and result["ci_low"] > 0.0
        false_alarms += effect == 0 and not result["ci_low"] <= 0.0 <= result["ci_high"]
    assert covered / (2 * trials) >= 0.93  # nominal 95% (the two-way resampling is conservative)
    assert detected / trials > 0.3  # ~0.47 expected: 3 seeds x 132 prompts, a 10-point gain
    assert false_alarms / trials <= 0.06


def test_paired_seed_difference_against_a_single_base_row_and_errors() -> None:
    a = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    base = [0.0, 0.0, 1.0]
    result = paired_seed_difference(a, base, n_resamples=500)
    assert result["mean"] == pytest.approx((a - np.array(base)).mean())
    one_seed = paired_seed_difference([[1, 1, 0, 1]], [[0, 1, 0, 0]], n_resamples=500)
    assert one_seed["mean"] == pytest.approx(paired_difference([1, 1, 0, 1], [0, 1, 0, 0])["mean"])
    same = paired_seed_difference([[1.0, 2.0]], [[0.5, 1.5]])
    assert (same["mean"], same["ci_low"], same["ci_high"]) == (0.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="pair"):
        paired_seed_difference(a, [[0.0, 1.0, 1.0]] * 3)
    with pytest.raises(ValueError, match="seeds, items"):
        paired_seed_difference([1.0, 0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_seed_difference([[1.0, float("nan")]], [[0.0, 0.0]])
    with pytest.raises(ValueError, match="at least one"):
        paired_seed_difference(np.zeros((0, 3)), np.zeros((0, 3)))
