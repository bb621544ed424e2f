"""Tests for generation, constraint pass rates and head-to-head comparisons."""

from __future__ import annotations

import pytest

from inspo_plugin.evaluation.checkers import EndPhrase, Lowercase, MaxWords
from inspo_plugin.evaluation.generation import (
    SHORT_ANSWER_WORDS,
    constraint_pass_rate,
    generate_responses,
    head_to_head,
    is_short_answer,
    sample_responses,
)


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


def test_short_answers_are_counted_with_how_many_of_them_pass() -> None:
    constraints = [EndPhrase("That is all."), EndPhrase("That is all."), MaxWords(40), Lowercase()]
    responses = [
        "That is all.",  # the required phrase alone: passes without doing any task
        "Rain falls and light bends in every drop of it. That is all.",
        '"The Great Gatsby"',
        "Bread",  # short, and fails lowercase
    ]
    result = constraint_pass_rate(responses, constraints, n_resamples=200)
    words = [len(r.split()) for r in responses]
    assert result["short_answers"] == sum(w <= SHORT_ANSWER_WORDS for w in words) == 3
    assert result["short_passed"] == 2  # "That is all." and the title; "Bread" fails
    assert result["passed"] == 3
    assert is_short_answer("one two three four five") and not is_short_answer("one two three four five six")
    report = head_to_head(responses, ["no"] * 4, constraints, n_resamples=200)
    assert report["candidate"]["short_answers"] == 3 and report["baseline"]["short_answers"] == 4
