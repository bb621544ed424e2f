"""Tests for generation, bootstrap confidence intervals, pass rates and win rates."""

from __future__ import annotations

import statistics

import numpy as np
import pytest

from inspo_plugin.evaluation.checkers import EndPhrase, Lowercase, MaxWords
from inspo_plugin.evaluation.generation import (
    bootstrap_ci,
    constraint_pass_rate,
    generate_responses,
    head_to_head,
    paired_difference,
    sample_responses,
    win_rate,
)


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


def test_constraint_pass_rate_with_objects_and_dicts() -> None:
    constraints = [MaxWords(3), Lowercase().to_dict(), Lowercase(), EndPhrase("Bye.")]
    responses = ["one two three", "all lower", "Not lower", "ok. bye."]
    result = constraint_pass_rate(responses, constraints, n_resamples=500)
    assert result["passes"] == [True, True, False, True]
    assert result["passed"] == 3
    assert result["pass_rate"] == pytest.approx(0.75)
    assert result["by_kind"]["lowercase"] == {"n": 2, "passed": 1, "pass_rate": 0.5}
    assert result["by_kind"]["max_words"]["pass_rate"] == 1.0
    assert list(result["by_kind"]) == sorted(result["by_kind"])
    with pytest.raises(ValueError, match="responses for"):
        constraint_pass_rate(["a"], [])


def test_head_to_head_with_groups() -> None:
    constraints = [Lowercase()] * 4
    candidate = ["yes", "yes", "No", "yes"]
    baseline = ["No", "yes", "No", "Yes"]
    groups = ["prompt", "prompt", "constraint", "constraint"]
    report = head_to_head(candidate, baseline, constraints, groups=groups, n_resamples=300)
    assert report["candidate"]["pass_rate"] == 0.75
    assert report["baseline"]["pass_rate"] == 0.25
    assert report["win_rate"]["wins"] == 2 and report["win_rate"]["ties"] == 2
    assert report["win_rate"]["win_rate"] == pytest.approx(0.75)
    assert report["pass_rate_gain"]["mean"] == pytest.approx(0.5)
    assert "passes" not in report["candidate"]
    assert set(report["groups"]) == {"prompt", "constraint"}
    assert report["groups"]["prompt"]["win_rate"]["win_rate"] == pytest.approx(0.75)
    assert report["groups"]["constraint"]["candidate"]["n"] == 2
    with pytest.raises(ValueError, match="same length"):
        head_to_head(candidate[:3], baseline, constraints)


def test_generate_responses_left_padding_matches_single_prompts(chatml_tokenizer, chatml_model) -> None:
    prompts = ["hi", "write a long answer about the weather in the mountains today please", "ok"]
    chatml_tokenizer.padding_side = "right"
    chatml_model.train()
    batched = generate_responses(chatml_model, chatml_tokenizer, prompts, max_new_tokens=6, batch_size=3)
    assert chatml_tokenizer.padding_side == "right"  # restored
    assert chatml_model.training  # restored
    single = [
        generate_responses(chatml_model, chatml_tokenizer, [p], max_new_tokens=6, batch_size=1)[0]
        for p in prompts
    ]
    assert len(batched) == 3 and all(isinstance(r, str) for r in batched)
    assert batched == single


def test_sample_responses_shape_and_seed(chatml_tokenizer, chatml_model) -> None:
    prompts = ["hi", "tell me something"]
    first = sample_responses(chatml_model, chatml_tokenizer, prompts, num_samples=3, max_new_tokens=5, seed=1)
    again = sample_responses(chatml_model, chatml_tokenizer, prompts, num_samples=3, max_new_tokens=5, seed=1)
    assert [len(s) for s in first] == [3, 3]
    assert first == again
    with pytest.raises(ValueError, match="greedy"):
        from inspo_plugin.evaluation.generation import _generate

        _generate(
            chatml_model,
            chatml_tokenizer,
            prompts,
            max_new_tokens=2,
            batch_size=1,
            greedy=True,
            num_samples=2,
            temperature=1.0,
            top_p=1.0,
            seed=0,
            system=None,
        )
