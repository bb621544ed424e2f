"""Generate answers with a chat model and score them against verifiable constraints.

- :func:`generate_responses` / :func:`sample_responses`: batched generation from user prompts
  (chat template, generation header, left padding), greedy or sampled.
- :func:`constraint_pass_rate`: share of responses that pass their constraint, with a bootstrap
  CI and a per-kind breakdown.
- :func:`head_to_head`: paired comparison of a candidate against a baseline on the same prompts
  (pass rates, win rate, pass-rate gain).

The statistics (bootstrap CIs, the win-rate convention: ties count half, so 0.5 means "no
difference") live in :mod:`inspo_plugin.evaluation.stats`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from inspo_plugin.evaluation.checkers import Constraint, constraint_from_dict
from inspo_plugin.evaluation.stats import bootstrap_ci, paired_difference, win_rate

__all__ = [
    "constraint_pass_rate",
    "generate_responses",
    "head_to_head",
    "sample_responses",
]


# --------------------------------------------------------------------------------------------
# generation
# --------------------------------------------------------------------------------------------
def _render_prompts(tokenizer: Any, prompts: Sequence[str], system: str | None) -> list[str]:
    rendered = []
    for prompt in prompts:
        messages = [{"role": "system", "content": system}] if system else []
        messages.append({"role": "user", "content": prompt})
        rendered.append(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False))
    return rendered


def _generate(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    batch_size: int,
    greedy: bool,
    num_samples: int,
    temperature: float,
    top_p: float,
    seed: int | None,
    system: str | None,
) -> list[list[str]]:
    import torch

    if batch_size < 1 or max_new_tokens < 1 or num_samples < 1:
        raise ValueError("batch_size, max_new_tokens and num_samples must be positive")
    if greedy and num_samples != 1:
        raise ValueError("greedy decoding gives one answer per prompt; use num_samples=1")
    texts = _render_prompts(tokenizer, prompts, system)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad token nor an eos token")
    eos_ids = tokenizer.eos_token_id
    # Longest prompts first: batches hold prompts of similar length (less padding), and a memory
    # problem shows up on the first batch rather than the last.
    order = sorted(
        range(len(texts)), key=lambda i: -len(tokenizer(texts[i], add_special_tokens=False)["input_ids"])
    )
    results: list[list[str]] = [[] for _ in texts]
    old_side = tokenizer.padding_side
    was_training = model.training
    tokenizer.padding_side = "left"
    model.eval()
    try:
        device = next(model.parameters()).device
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            enc = tokenizer(
                [texts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False
            ).to(device)
            kwargs: dict[str, Any] = {
                "max_new_tokens": max_new_tokens,
                "pad_token_id": pad_id,
                "eos_token_id": eos_ids,
                "do_sample": not greedy,
                "num_return_sequences": num_samples,
            }
            if greedy:
                kwargs.update(temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(temperature=temperature, top_p=top_p, top_k=None)
                if seed is not None:
                    torch.manual_seed(seed + start)
            with torch.no_grad():
                out = model.generate(**enc, **kwargs)
            new_tokens = out[:, enc["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
            for j, i in enumerate(idx):
                results[i] = [d.strip() for d in decoded[j * num_samples : (j + 1) * num_samples]]
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return results


def generate_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    max_new_tokens: int = 128,
    batch_size: int = 8,
    greedy: bool = True,
    *,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int | None = 0,
    system: str | None = None,
) -> list[str]:
    """One answer per prompt, in the order of ``prompts``.

    Each prompt is sent as a single user message through the tokenizer's chat template, with the
    generation header appended (and the template's default system prompt, if it has one, unless
    ``system`` is given). Batches are left-padded; special tokens are removed from the answers and
    surrounding whitespace stripped. The model is put in eval mode for the call and restored after.

    Args:
        model: a causal LM with ``generate``.
        tokenizer: its tokenizer, with a chat template.
        prompts: user messages.
        max_new_tokens: generation budget per answer.
        batch_size: prompts per ``generate`` call.
        greedy: greedy decoding (deterministic); otherwise sampling with ``temperature``/``top_p``.
        temperature: sampling temperature (ignored when greedy).
        top_p: nucleus sampling threshold (ignored when greedy).
        seed: seeds torch's generator before each sampled batch, for reproducible samples.
        system: an optional system message.
    """
    out = _generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        greedy=greedy,
        num_samples=1,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        system=system,
    )
    return [answers[0] for answers in out]


def sample_responses(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    num_samples: int,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    *,
    temperature: float = 0.8,
    top_p: float = 0.95,
    seed: int | None = 0,
    system: str | None = None,
) -> list[list[str]]:
    """``num_samples`` sampled answers per prompt (``batch_size`` prompts per call, so up to
    ``batch_size * num_samples`` sequences are decoded together). See :func:`generate_responses`."""
    return _generate(
        model,
        tokenizer,
        prompts,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        greedy=False,
        num_samples=num_samples,
        temperature=temperature,
        top_p=top_p,
        seed=seed,
        system=system,
    )


# An answer this short does none of the shipped held-out tasks (a description, an explanation, tips, a
# message), yet it can pass their constraints: the required end phrase alone ("That is all."), a bare
# title under a word limit. DPO on SmolLM2-135M learns to answer so (README, "The runs in detail"), so
# the pass rate comes with how many answers are that short and how many of those pass.
SHORT_ANSWER_WORDS = 5


def is_short_answer(text: str, max_words: int = SHORT_ANSWER_WORDS) -> bool:
    """True when ``text`` has at most ``max_words`` whitespace-separated words.

    Whitespace words, not the word-limit checks' :func:`~inspo_plugin.evaluation.checkers.count_words`
    (runs of letters and digits): that count makes "P.S. I hope this helps." six words, and stock
    phrases like it are what this count is for. Neither count is exact — this one misses a JSON
    stub (``{"name": "Ava"}`` spread over lines) and runs of symbols, which ``count_words``
    catches; on the bench's 4,884 saved answers the two disagree on 59.
    """
    return len(text.split()) <= max_words


def _to_constraint(c: Constraint | Mapping[str, Any]) -> Constraint:
    return c if isinstance(c, Constraint) else constraint_from_dict(c)


def constraint_pass_rate(
    responses: Sequence[str],
    constraints: Sequence[Constraint | Mapping[str, Any]],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Share of ``responses[i]`` that pass ``constraints[i]``, with a bootstrap CI.

    Constraints may be :class:`Constraint` objects or their ``to_dict()`` form.

    Returns:
        ``{"n", "passed", "pass_rate", "ci_low", "ci_high", "confidence", "passes": [bool, ...],
        "short_answers", "short_passed", "by_kind": {kind: {"n", "passed", "pass_rate"}}}`` —
        ``short_answers``: responses of at most :data:`SHORT_ANSWER_WORDS` words, ``short_passed``:
        how many of them pass.
    """
    if len(responses) != len(constraints):
        raise ValueError(f"{len(responses)} responses for {len(constraints)} constraints")
    if not responses:
        raise ValueError("constraint_pass_rate needs at least one response")
    parsed = [_to_constraint(c) for c in constraints]
    passes = [c.check(r) for r, c in zip(responses, parsed, strict=True)]
    low, high = bootstrap_ci(passes, n_resamples=n_resamples, seed=seed, confidence=confidence)
    short = [is_short_answer(r) for r in responses]
    by_kind: dict[str, dict[str, Any]] = {}
    for c, ok in zip(parsed, passes, strict=True):
        entry = by_kind.setdefault(c.kind, {"n": 0, "passed": 0})
        entry["n"] += 1
        entry["passed"] += int(ok)
    for entry in by_kind.values():
        entry["pass_rate"] = entry["passed"] / entry["n"]
    return {
        "n": len(passes),
        "passed": sum(passes),
        "pass_rate": sum(passes) / len(passes),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
        "passes": passes,
        "short_answers": sum(short),
        "short_passed": sum(p and s for p, s in zip(passes, short, strict=True)),
        "by_kind": dict(sorted(by_kind.items())),
    }


def head_to_head(
    candidate_responses: Sequence[str],
    baseline_responses: Sequence[str],
    constraints: Sequence[Constraint | Mapping[str, Any]],
    *,
    groups: Sequence[str] | None = None,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Compare a candidate checkpoint with a baseline on the same constrained prompts.

    A prompt is a win for the candidate when its answer passes the constraint and the baseline's
    fails, a loss in the opposite case, a tie when both pass or both fail (ties count half; see
    :mod:`inspo_plugin.evaluation.stats`). ``groups`` (for example the ``heldout`` field of the test
    rows) adds the same numbers per group.

    Returns:
        ``{"candidate": pass-rate dict, "baseline": pass-rate dict, "win_rate": win-rate dict,
        "pass_rate_gain": paired_difference dict, "groups": {name: {...same keys...}}}``
        (the pass-rate dicts without their per-item ``passes`` list).
    """
    if not len(candidate_responses) == len(baseline_responses) == len(constraints):
        raise ValueError("candidate, baseline and constraints must have the same length")
    if groups is not None and len(groups) != len(constraints):
        raise ValueError("groups must have one entry per constraint")

    def summary(idx: list[int]) -> dict[str, Any]:
        cons = [constraints[i] for i in idx]
        cand = constraint_pass_rate(
            [candidate_responses[i] for i in idx],
            cons,
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
        base = constraint_pass_rate(
            [baseline_responses[i] for i in idx],
            cons,
            n_resamples=n_resamples,
            seed=seed,
            confidence=confidence,
        )
        result = {
            "win_rate": win_rate(
                cand["passes"], base["passes"], n_resamples=n_resamples, seed=seed, confidence=confidence
            ),
            "pass_rate_gain": paired_difference(
                cand["passes"], base["passes"], n_resamples=n_resamples, seed=seed, confidence=confidence
            ),
        }
        del cand["passes"], base["passes"]
        return {"candidate": cand, "baseline": base, **result}

    report = summary(list(range(len(constraints))))
    if groups is not None:
        report["groups"] = {
            name: summary([i for i, g in enumerate(groups) if g == name]) for name in sorted(set(groups))
        }
    return report
