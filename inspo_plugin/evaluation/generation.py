"""Generate answers with a chat model and score them against verifiable constraints.

- :func:`generate_responses` / :func:`sample_responses`: batched generation from user prompts
  (chat template, generation header, left padding), greedy or sampled.
- :func:`bootstrap_ci`: percentile bootstrap confidence interval of a mean.
- :func:`constraint_pass_rate`: share of responses that pass their constraint, with a CI and a
  per-kind breakdown.
- :func:`win_rate` / :func:`head_to_head`: paired comparison of a candidate against a baseline on
  the same prompts.

Win-rate convention: for each prompt, the candidate *wins* when its score is higher than the
baseline's (for pass/fail scores: the candidate passes and the baseline fails), *loses* when lower,
and *ties* otherwise (both pass or both fail). Ties count half:
``win_rate = (wins + 0.5 * ties) / n``, so 0.5 means "no difference". The confidence interval
is a paired bootstrap: prompts are resampled, each keeping its candidate/baseline outcome.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from inspo_plugin.evaluation.checkers import Constraint, constraint_from_dict

__all__ = [
    "bootstrap_ci",
    "constraint_pass_rate",
    "generate_responses",
    "head_to_head",
    "paired_difference",
    "sample_responses",
    "win_rate",
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


# --------------------------------------------------------------------------------------------
# statistics
# --------------------------------------------------------------------------------------------
def bootstrap_ci(
    values: Sequence[float] | np.ndarray,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values``.

    ``n_resamples`` resamples of ``len(values)`` items drawn with replacement (numpy's
    ``default_rng(seed)``, so the interval is reproducible); the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` quantiles of the resampled means.
    A single value, or values that are all equal, give a zero-width interval at that value.

    Raises:
        ValueError: no values, a non-finite value, or ``confidence`` outside (0, 1).
    """
    data = np.asarray(values, dtype=np.float64).reshape(-1)
    if data.size == 0:
        raise ValueError("bootstrap_ci needs at least one value")
    if not np.all(np.isfinite(data)):
        raise ValueError("bootstrap_ci got a NaN or infinite value")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError("n_resamples must be positive")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])
    rng = np.random.default_rng(seed)
    n = data.size
    means = np.empty(n_resamples, dtype=np.float64)
    chunk = max(1, 2_000_000 // n)  # bound the index matrix to ~16 MB
    for start in range(0, n_resamples, chunk):
        stop = min(n_resamples, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = data[idx].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _as_scores(name: str, scores: Sequence[bool | float]) -> np.ndarray:
    arr = np.asarray([float(s) for s in scores], dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains a NaN or infinite score")
    return arr


def win_rate(
    scores_a: Sequence[bool | float],
    scores_b: Sequence[bool | float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Paired win rate of A over B, with a paired bootstrap CI.

    Item ``i`` is a win for A when ``scores_a[i] > scores_b[i]`` (with pass/fail scores: A passes
    and B fails), a loss when lower, a tie when equal; ``win_rate = (wins + 0.5 * ties) / n``.

    Returns:
        ``{"n", "wins", "losses", "ties", "win_rate", "ci_low", "ci_high", "confidence"}``.

    Raises:
        ValueError: the two lists differ in length or are empty.
    """
    a, b = _as_scores("scores_a", scores_a), _as_scores("scores_b", scores_b)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need equal lengths, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("win_rate needs at least one pair")
    outcome = np.where(a > b, 1.0, np.where(a < b, 0.0, 0.5))
    low, high = bootstrap_ci(outcome, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return {
        "n": int(a.size),
        "wins": int(np.sum(a > b)),
        "losses": int(np.sum(a < b)),
        "ties": int(np.sum(a == b)),
        "win_rate": float(outcome.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
    }


def paired_difference(
    scores_a: Sequence[bool | float],
    scores_b: Sequence[bool | float],
    *,
    n_resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Mean of ``scores_a - scores_b`` (for pass/fail: the pass-rate gain) with a paired bootstrap CI."""
    a, b = _as_scores("scores_a", scores_a), _as_scores("scores_b", scores_b)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired scores need equal, non-zero lengths, got {a.size} and {b.size}")
    diff = a - b
    low, high = bootstrap_ci(diff, n_resamples=n_resamples, seed=seed, confidence=confidence)
    return {
        "n": int(a.size),
        "mean": float(diff.mean()),
        "ci_low": low,
        "ci_high": high,
        "confidence": confidence,
    }


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
        "by_kind": {kind: {"n", "passed", "pass_rate"}}}``.
    """
    if len(responses) != len(constraints):
        raise ValueError(f"{len(responses)} responses for {len(constraints)} constraints")
    if not responses:
        raise ValueError("constraint_pass_rate needs at least one response")
    parsed = [_to_constraint(c) for c in constraints]
    passes = [c.check(r) for r, c in zip(responses, parsed, strict=True)]
    low, high = bootstrap_ci(passes, n_resamples=n_resamples, seed=seed, confidence=confidence)
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
    the module docstring). ``groups`` (for example the ``heldout`` field of the test rows) adds
    the same numbers per group.

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
