"""Evaluate a checkpoint against its reference and write JSON + a markdown table.

Three measurements, each with a bootstrap 95% confidence interval:

1. held-out preference accuracy and mean margin, unconditional (deployed policy) and conditional
   (:mod:`inspo_plugin.evaluation.preference`);
2. generation on held-out constrained prompts (greedy, prompt alone), scored by the verifiable
   checkers: the constraint pass rate, and the head-to-head win rate against the reference's own
   answers (a win: the checkpoint passes where the reference fails; ties count half);
3. optionally, a pairwise judge through an OpenAI-compatible endpoint.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from inspo_plugin.evaluation.generation import SHORT_ANSWER_WORDS

Progress = Callable[[str], None]


def load_model(path: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """A causal LM and its tokenizer from a local checkpoint (full model or PEFT adapter), fp32, eval mode,
    on ``device`` (default: where transformers loads it, the CPU)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model: Any = AutoModelForCausalLM.from_pretrained(path, dtype="float32")
    if device is not None:
        model.to(device)
    model.eval()
    return model, tokenizer


def evaluate_checkpoint(
    model_path: str | Path,
    reference_path: str | Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    template: str = "revise",
    reflection_prompt: str | None = None,
    generate: int = 0,
    max_pairs: int | None = None,
    max_new_tokens: int = 96,
    batch_size: int = 8,
    reference_responses: Sequence[str] | None = None,
    reference_logps: Mapping[str, Sequence[float]] | None = None,
    judge: Any = None,
    progress: Progress = print,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """Everything for one checkpoint. ``generate``: number of held-out prompts to answer (0: none);
    ``max_pairs``: score only the first N pairs for the preference metrics (default: all).

    ``reference_responses`` / ``reference_logps`` reuse the reference's answers and log-probs across
    several checkpoints; the result holds both (``responses``, ``reference_responses``,
    ``preference.reference_logps``) so the caller can cache them. ``passes`` holds, per answered
    prompt, whether the checkpoint's answer passes its constraint (for paired comparisons).
    ``device``: where both models run (default: the CPU).
    """
    import torch

    torch.manual_seed(seed)
    started = time.monotonic()
    is_reference = Path(model_path).resolve() == Path(reference_path).resolve()
    model, tokenizer = load_model(model_path, device)
    reference = model if is_reference else load_model(reference_path, device)[0]
    from inspo_plugin.evaluation.preference import preference_metrics

    result: dict[str, Any] = {"model": str(model_path), "reference": str(reference_path)}
    if not is_reference:  # against itself every margin is zero by definition
        pairs = list(rows)[:max_pairs] if max_pairs else list(rows)
        progress(f"  preference accuracy on {len(pairs)} held-out pairs")
        result["preference"] = preference_metrics(
            model,
            reference,
            tokenizer,
            pairs,
            template=template,
            reflection_prompt=reflection_prompt,
            batch_size=batch_size,
            reference_logps=reference_logps,
        )
    if generate:
        from inspo_plugin.evaluation.generation import constraint_pass_rate, generate_responses, head_to_head

        items = [r for r in rows if r.get("constraint")][:generate]
        prompts = [str(r["prompt"]) for r in items]
        constraints = [r["constraint"] for r in items]
        progress(f"  generating {len(prompts)} answers (greedy, prompt alone)")
        responses = generate_responses(
            model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
        )
        if is_reference:
            rate = constraint_pass_rate(responses, constraints, seed=seed)
            result["passes"] = rate.pop("passes")
            result["generation"] = {"candidate": rate}
            result["responses"] = result["reference_responses"] = responses
            result["seconds"] = round(time.monotonic() - started, 1)
            return result
        if reference_responses is None:
            progress(f"  generating {len(prompts)} reference answers")
            reference_responses = generate_responses(
                reference, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size
            )
        groups = [str(r.get("heldout", "all")) for r in items]
        result["generation"] = head_to_head(
            responses, list(reference_responses)[: len(prompts)], constraints, groups=groups, seed=seed
        )
        result["responses"] = responses
        result["passes"] = constraint_pass_rate(responses, constraints, n_resamples=1)["passes"]
        result["reference_responses"] = list(reference_responses)[: len(prompts)]
        if judge is not None:
            progress(f"  pairwise judge on {len(prompts)} prompts")
            result["judge"] = judge.compare_all(prompts, responses, result["reference_responses"])
    result["seconds"] = round(time.monotonic() - started, 1)
    return result


def _fmt(summary: Mapping[str, Any], key: str = "mean", pct: bool = False) -> str:
    scale, unit = (100.0, "%") if pct else (1.0, "")
    value, low, high = (summary[key] * scale, summary["ci_low"] * scale, summary["ci_high"] * scale)
    return f"{value:.1f}{unit} [{low:.1f}, {high:.1f}]" if pct else f"{value:.2f} [{low:.2f}, {high:.2f}]"


def _short_cell(rate: Mapping[str, Any]) -> str:
    """How many answers are short and how many of those pass (results saved before the count: —)."""
    if "short_answers" not in rate:
        return "—"
    return f"{rate['short_answers']} of {rate['n']} ({rate['short_passed']} pass)"


def markdown_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per named result: accuracies, margins, pass rates and win rates with 95% CIs."""
    header = (
        "| run | pref. acc. (deployed) | margin (deployed) | pref. acc. (reflective) | "
        f"constraint pass rate | answers ≤ {SHORT_ANSWER_WORDS} words | win rate vs reference | train time |\n"
        "| --- | --- | --- | --- | --- | --- | --- | --- |"
    )
    lines = [header]
    for name, r in results.items():
        pref = r.get("preference")
        gen = r.get("generation")
        cells = [
            name,
            _fmt(pref["acc_uncond"], pct=True) if pref else "—",
            _fmt(pref["margin_uncond"]) if pref else "—",
            _fmt(pref["acc_cond"], pct=True) if pref else "—",
            _fmt(gen["candidate"], "pass_rate", pct=True) if gen else "—",
            _short_cell(gen["candidate"]) if gen else "—",
            _fmt(gen["win_rate"], "win_rate", pct=True) if gen and "win_rate" in gen else "—",
            f"{r['train_seconds'] / 60:.1f} min" if r.get("train_seconds") else "—",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(
    results: Mapping[str, Mapping[str, Any]], output_dir: str | Path, title: str
) -> dict[str, Path]:
    """``results.json`` (everything) and ``results.md`` (the table)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=2, default=str))
    md_path = out / "results.md"
    md_path.write_text(
        f"# {title}\n\n{markdown_table(results)}\n\n"
        "Brackets: bootstrap 95% confidence intervals. Margins in log-prob units against the reference; "
        "'deployed' = prompted with x alone, 'reflective' = scored after the alternative answer. Win rate: "
        "the run's greedy answer passes the verifiable constraint and the reference's fails (ties count half). "
        f"Answers ≤ {SHORT_ANSWER_WORDS} words: greedy answers that short, and how many of them pass — such an "
        "answer can pass a constraint (an end phrase alone) without doing the task.\n"
    )
    return {"json": json_path, "markdown": md_path}
