"""Context gains of a data set under a model, before training (``inspo preview --context-gains``).

For every row, one forward over the reflective sequences ``[A; B]`` (the layout and collator training
uses, :func:`~inspo_plugin.evaluation.preference.pair_logps`) gives log π(y|x) and log π(y|x, y') for
both answers; the context gain of an answer is their difference (see :mod:`inspo_plugin.core.context`).
The report summarises the gains (mean and median, in nats and in nats per answer token) over all rows
and by the rows' ``chosen_source``/``rejected_source`` when they have them.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from inspo_plugin.core.context import DEFAULT_CONTEXT_GAIN_WARNING
from inspo_plugin.evaluation.preference import pair_logps, prepare_rows

SOURCE_FIELDS = ("chosen_source", "rejected_source")


def context_gains(
    model: Any,
    tokenizer: Any,
    rows: Sequence[Mapping[str, Any]],
    template: str = "revise",
    batch_size: int = 8,
    max_length: int | None = None,
    reflection_prompt: str | None = None,
) -> dict[str, Any]:
    """Per-row context gains and their summary.

    Returns:
        ``{"per_row": [{"row", "group", "context_chosen", "context_rejected", "chosen_tokens",
        "rejected_tokens"}, ...], "skipped": [(row, reason), ...], "overall": summary,
        "groups": {group: summary}}``; a summary is :func:`summarize`'s. ``group`` is
        ``"<chosen_source>/<rejected_source>"``, or ``None`` for rows without those fields.
    """
    examples, skipped = prepare_rows(
        tokenizer, rows, template, max_length, source="context-gains", reflection_prompt=reflection_prompt
    )
    if not examples:
        raise ValueError(f"no usable rows ({len(skipped)} skipped: {skipped[:3]})")
    logps = pair_logps(model, tokenizer, examples, batch_size)
    skipped_rows = {i for i, _ in skipped}
    kept = [i for i in range(len(rows)) if i not in skipped_rows]
    per_row: list[dict[str, Any]] = []
    for k, (i, example) in enumerate(zip(kept, examples, strict=True)):
        row = rows[i]
        group = (
            f"{row['chosen_source']}/{row['rejected_source']}"
            if all(isinstance(row.get(f), str) for f in SOURCE_FIELDS)
            else None
        )
        per_row.append(
            {
                "row": i,
                "group": group,
                "context_chosen": float(logps["chosen_cond"][k] - logps["chosen"][k]),
                "context_rejected": float(logps["rejected_cond"][k] - logps["rejected"][k]),
                "chosen_tokens": len(example["chosen_ids"]),
                "rejected_tokens": len(example["rejected_ids"]),
            }
        )
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in per_row:
        if entry["group"] is not None:
            groups.setdefault(entry["group"], []).append(entry)
    return {
        "per_row": per_row,
        "skipped": skipped,
        "overall": summarize(per_row),
        "groups": {name: summarize(entries) for name, entries in sorted(groups.items())},
    }


def summarize(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and median context gain of ``entries`` (:func:`context_gains`'s per-row records).

    Per answer, in nats (``chosen``, ``rejected``) and in nats per answer token (``chosen_per_token``,
    ``rejected_per_token``: each row's gain over its answer's tokens); ``pooled_per_token`` is all
    gains over all answer tokens, the quantity the training-time warning compares with its threshold.
    """
    out: dict[str, Any] = {"n": len(entries)}
    for side in ("chosen", "rejected"):
        gains = [e[f"context_{side}"] for e in entries]
        per_token = [e[f"context_{side}"] / max(e[f"{side}_tokens"], 1) for e in entries]
        out[side] = {"mean": statistics.fmean(gains), "median": statistics.median(gains)}
        out[f"{side}_per_token"] = {
            "mean": statistics.fmean(per_token),
            "median": statistics.median(per_token),
        }
    tokens = sum(e["chosen_tokens"] + e["rejected_tokens"] for e in entries)
    out["pooled_per_token"] = sum(e["context_chosen"] + e["context_rejected"] for e in entries) / max(
        tokens, 1
    )
    return out


def format_report(report: Mapping[str, Any], threshold: float | None = DEFAULT_CONTEXT_GAIN_WARNING) -> str:
    """The report as a text table (one line overall, one per group)."""
    header = (
        f"{'rows':<22} {'n':>4}  {'chosen nats mean/median':>24}  {'rejected nats mean/median':>25}  "
        f"{'chosen /tok':>12}  {'rejected /tok':>13}  {'pooled /tok':>11}"
    )
    lines = [
        "context gain = log π(y | x, alternative) − log π(y | x), per row; /tok = per answer token "
        "(mean, median)",
        header,
    ]
    entries = [("all", report["overall"])] + [(name, s) for name, s in report["groups"].items()]
    for name, s in entries:
        lines.append(
            f"{name:<22} {s['n']:>4}  {s['chosen']['mean']:>11.2f} / {s['chosen']['median']:>10.2f}  "
            f"{s['rejected']['mean']:>12.2f} / {s['rejected']['median']:>10.2f}  "
            f"{s['chosen_per_token']['mean']:>5.2f}/{s['chosen_per_token']['median']:>5.2f}  "
            f"{s['rejected_per_token']['mean']:>6.2f}/{s['rejected_per_token']['median']:>5.2f}  "
            f"{s['pooled_per_token']:>11.3f}"
        )
    if report["skipped"]:
        lines.append(f"skipped rows: {len(report['skipped'])} (first: {report['skipped'][0]})")
    if threshold is not None:
        pooled = report["overall"]["pooled_per_token"]
        verdict = "above" if pooled > threshold else "below"
        lines.append(
            f"pooled gain {pooled:.3f} nats/token is {verdict} the training-time warning threshold "
            f"{threshold:g} (option context_gain_warning)"
        )
    return "\n".join(lines)
