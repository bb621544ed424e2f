"""Held-out preference accuracy and margin of a checkpoint against its reference.

For each held-out pair, one forward of the policy and one of the reference over the reflective
sequences ``[A; B]`` give (segment 1 being exactly the unconditional log-prob):

- unconditional margin (the deployed policy, prompted with x alone — standard DPO's implicit reward
  margin in log-prob units): (log π(y_w|x) − log π_ref(y_w|x)) − (log π(y_l|x) − log π_ref(y_l|x));
- conditional margin (what InSPO trains): the same with π(y|x, y') for the policy.

Accuracy is the share of pairs with a positive margin; each mean comes with a bootstrap 95% CI.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.layout import layout_row
from inspo_plugin.core.logprobs import reflective_forward, split_policy_logps
from inspo_plugin.core.rows import InvalidPreferenceRow, normalize_row
from inspo_plugin.core.sequences import RowTooLong, make_reflection_format, tokenize_preference_row


@torch.no_grad()
def pair_logps(
    model: Any, tokenizer: Any, examples: Sequence[Mapping[str, Any]], batch_size: int = 8
) -> dict[str, torch.Tensor]:
    """The four log-probs of every laid-out example (see :func:`prepare_rows`), each ``[N]``."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = DataCollatorForReflectivePreference(pad_token_id=pad)
    device = next(model.parameters()).device
    parts: dict[str, list[torch.Tensor]] = {
        "chosen": [],
        "rejected": [],
        "chosen_cond": [],
        "rejected_cond": [],
    }
    for start in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(list(examples[start : start + batch_size])).items()}
        seg, _ = reflective_forward(model, batch)
        policy, _, _ = split_policy_logps(seg)
        for name in parts:
            parts[name].append(getattr(policy, name).double().cpu())
    return {name: torch.cat(values) for name, values in parts.items()}


def prepare_rows(
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    template: str = "revise",
    max_length: int | None = None,
    source: str = "eval",
    reflection_prompt: str | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, str]]]:
    """Normalise, tokenise and lay out rows; returns the examples and the (row, reason) of skipped ones."""
    fmt = make_reflection_format(tokenizer, template, reflection_prompt)
    examples, skipped = [], []
    for i, row in enumerate(rows):
        try:
            normal = normalize_row(row, index=i, source=source)
            t = tokenize_preference_row(tokenizer, normal)
            examples.append(
                layout_row(
                    t["prompt_ids"],
                    t["chosen_ids"],
                    t["rejected_ids"],
                    fmt,
                    max_length,
                    tokenizer.bos_token_id,
                )
            )
        except (InvalidPreferenceRow, RowTooLong) as err:
            skipped.append((i, str(err)))
    return examples, skipped


def preference_metrics(
    model: Any,
    reference: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    template: str = "revise",
    batch_size: int = 8,
    max_length: int | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
    reference_logps: Mapping[str, Sequence[float]] | None = None,
    reflection_prompt: str | None = None,
) -> dict[str, Any]:
    """Accuracy and mean margin, unconditional and conditional, with bootstrap 95% CIs.

    The result's ``reference_logps`` can be passed back in to skip the reference forwards when
    several checkpoints are compared with the same reference on the same rows. ``per_pair`` holds
    each scored pair's margins (``margin_uncond``, ``margin_cond``) in row order, for paired tests.
    """
    examples, skipped = prepare_rows(
        tokenizer, rows, template, max_length, reflection_prompt=reflection_prompt
    )
    if not examples:
        raise ValueError(f"no usable evaluation rows ({len(skipped)} skipped: {skipped[:3]})")
    pol = pair_logps(model, tokenizer, examples, batch_size)
    if reference_logps is not None and len(reference_logps["chosen"]) == len(examples):
        ref = {k: torch.tensor(v, dtype=torch.float64) for k, v in reference_logps.items()}
    else:
        ref = pair_logps(reference, tokenizer, examples, batch_size)
    margin_uncond = (pol["chosen"] - ref["chosen"]) - (pol["rejected"] - ref["rejected"])
    margin_cond = (pol["chosen_cond"] - ref["chosen"]) - (pol["rejected_cond"] - ref["rejected"])
    out: dict[str, Any] = {"n_pairs": len(examples), "n_skipped": len(skipped)}
    for name, margin in (("uncond", margin_uncond), ("cond", margin_cond)):
        acc = (margin > 0).double().tolist()
        values = margin.tolist()
        out[f"acc_{name}"] = _summary(acc, n_resamples, seed)
        out[f"margin_{name}"] = _summary(values, n_resamples, seed)
    out["reference_logps"] = {k: v.tolist() for k, v in ref.items()}
    # per pair, in row order: for paired comparisons of several checkpoints on the same pairs
    out["per_pair"] = {"margin_uncond": margin_uncond.tolist(), "margin_cond": margin_cond.tolist()}
    return out


def _summary(values: Sequence[float], n_resamples: int, seed: int) -> dict[str, float]:
    from inspo_plugin.evaluation.stats import bootstrap_ci

    low, high = bootstrap_ci(list(values), n_resamples=n_resamples, seed=seed)
    return {"mean": float(sum(values) / len(values)), "ci_low": float(low), "ci_high": float(high)}
