"""Per-segment summed log-probs of reflective sequences (torch only).

One forward over the batch ``[A_1 … A_B, B_1 … B_B]`` gives, per pair,

    A: FIRST = log π(y_w | x)        SECOND = log π(y_l | x, y_w)
    B: FIRST = log π(y_l | x)        SECOND = log π(y_w | x, y_l)

which :func:`split_policy_logps` turns into the four numbers the objectives take.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from inspo_plugin.core.objectives import PolicyLogps
from inspo_plugin.core.sequences import Segment


def token_logps(logits: Tensor, input_ids: Tensor) -> Tensor:
    """log p(token_t | tokens_<t) for t ≥ 1, shape ``[N, L-1]``, computed one row at a time.

    Args:
        logits: ``[N, L, V]`` model outputs.
        input_ids: ``[N, L]`` token ids.
    """
    labels = input_ids[:, 1:]
    shifted = logits[:, :-1, :]
    rows = []
    for row_logits, row_labels in zip(shifted, labels, strict=True):
        # Half-precision logits are upcast to fp32, one sequence at a time, so memory stays at one [L, V] block.
        row = row_logits.float() if row_logits.dtype in (torch.float16, torch.bfloat16) else row_logits
        picked = torch.gather(row, -1, row_labels.unsqueeze(-1)).squeeze(-1)
        rows.append(picked - torch.logsumexp(row, dim=-1))
    return torch.stack(rows)


@dataclass(frozen=True)
class SegmentLogps:
    """Summed log-probs and token counts of the two answer segments, each ``[N]``."""

    first: Tensor
    second: Tensor
    first_len: Tensor
    second_len: Tensor


def segment_logps(per_token_logps: Tensor, segment_ids: Tensor) -> SegmentLogps:
    """Sum per-token log-probs over the FIRST and SECOND answer segments.

    Args:
        per_token_logps: ``[N, L-1]`` from :func:`token_logps` (position t scores token t+1).
        segment_ids: ``[N, L]`` labels from :class:`~inspo_plugin.core.sequences.Segment`.
    """
    target_segments = segment_ids[:, 1:]
    first = target_segments == Segment.FIRST
    second = target_segments == Segment.SECOND
    zero = per_token_logps.new_zeros(())
    return SegmentLogps(
        first=torch.where(first, per_token_logps, zero).sum(-1),
        second=torch.where(second, per_token_logps, zero).sum(-1),
        first_len=first.sum(-1),
        second_len=second.sum(-1),
    )


def reflective_forward(
    model: Any, batch: Mapping[str, Tensor], model_kwargs: Mapping[str, Any] | None = None
) -> tuple[SegmentLogps, Any]:
    """One forward over the collated ``[A; B]`` batch; returns the per-segment sums and the outputs.

    Args:
        model: a causal LM returning ``logits``.
        batch: the collated ``inspo_input_ids``, ``inspo_attention_mask`` and ``inspo_segment_ids``.
        model_kwargs: extra keyword arguments of the forward, e.g. ``output_router_logits=True`` so a
            mixture-of-experts model returns its load-balancing loss as ``outputs.aux_loss``.
    """
    ids = batch["inspo_input_ids"]
    outputs = model(
        input_ids=ids, attention_mask=batch["inspo_attention_mask"], use_cache=False, **(model_kwargs or {})
    )
    return segment_logps(token_logps(outputs.logits, ids), batch["inspo_segment_ids"]), outputs


def split_policy_logps(seg: SegmentLogps) -> tuple[PolicyLogps, Tensor, Tensor]:
    """Map the ``[2B]`` segment sums of ``[A; B]`` to policy log-probs and response lengths ``[B]``."""
    a_first, b_first = seg.first.chunk(2)
    a_second, b_second = seg.second.chunk(2)
    policy = PolicyLogps(chosen=a_first, rejected=b_first, chosen_cond=b_second, rejected_cond=a_second)
    chosen_len, rejected_len = seg.first_len.chunk(2)
    return policy, chosen_len, rejected_len
