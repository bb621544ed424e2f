"""Batching of reflective pairs (torch and the sequence builder only).

:func:`prepare_example` turns one tokenised pair into the columns the collator reads;
:class:`DataCollatorForReflectivePreference` pads a batch of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inspo_plugin.sequences import ReflectionFormat, Segment, build_reflective_pair, strip_duplicate_bos

# Columns the trainer adds or reads; a dataset strategy may provide the first four.
ROW_COLUMN = "inspo_row"
SOURCE_COLUMN = "inspo_source"
DROP_COLUMN = "inspo_drop_reason"
MESSAGES_COLUMN = "inspo_messages"  # JSON of the normalised conversational row
BRIDGE_A_COLUMN = "inspo_bridge_a"
BRIDGE_B_COLUMN = "inspo_bridge_b"


def prepare_example(
    prompt_ids: Sequence[int],
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    fmt: ReflectionFormat,
    max_length: int | None = None,
    bos_token_id: int | None = None,
) -> dict[str, Any]:
    """Truncate one tokenised pair and attach its bridges (raises ``RowTooLong``)."""
    prompt = strip_duplicate_bos(prompt_ids, bos_token_id)
    pair = build_reflective_pair(prompt, chosen_ids, rejected_ids, fmt, max_length)
    return {
        "prompt_ids": pair.prompt_ids,
        "chosen_ids": pair.chosen_ids,
        "rejected_ids": pair.rejected_ids,
        BRIDGE_A_COLUMN: pair.bridge_after_chosen,
        BRIDGE_B_COLUMN: pair.bridge_after_rejected,
    }


@dataclass
class DataCollatorForReflectivePreference:
    """Pads a batch of prepared rows into the plain DPO pairs and the reflective sequences.

    Returns ``input_ids``/``attention_mask``/``completion_mask`` ``[2B, L]`` (chosen half first, as
    TRL's collator) for the reference, and ``inspo_input_ids``/``inspo_attention_mask``/
    ``inspo_segment_ids`` ``[2B, L']`` holding ``[A_1..A_B, B_1..B_B]``. Attention masks come from the
    sequence lengths, never from ``ids != pad_id``: with pad = EOS that would hide real end-of-turn
    tokens between the two answers.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        plain_ids, plain_completion = [], []
        for half in ("chosen_ids", "rejected_ids"):
            for ex in examples:
                plain_ids.append(ex["prompt_ids"] + ex[half])
                plain_completion.append([0] * len(ex["prompt_ids"]) + [1] * len(ex[half]))
        refl_ids, refl_segments = [], []
        for first, bridge, second in (
            ("chosen_ids", BRIDGE_A_COLUMN, "rejected_ids"),
            ("rejected_ids", BRIDGE_B_COLUMN, "chosen_ids"),
        ):
            for ex in examples:
                p, a, br, b = ex["prompt_ids"], ex[first], ex[bridge], ex[second]
                refl_ids.append(p + a + br + b)
                refl_segments.append(
                    [Segment.PROMPT] * len(p)
                    + [Segment.FIRST] * len(a)
                    + [Segment.BRIDGE] * len(br)
                    + [Segment.SECOND] * len(b)
                )
        out = {}
        out["input_ids"], out["attention_mask"] = self._pad(plain_ids, self.pad_token_id)
        out["completion_mask"], _ = self._pad(plain_completion, 0)
        out["inspo_input_ids"], out["inspo_attention_mask"] = self._pad(refl_ids, self.pad_token_id)
        out["inspo_segment_ids"], _ = self._pad([[int(s) for s in seq] for seq in refl_segments], 0)
        for key in ("ref_chosen_logps", "ref_rejected_logps"):
            if key in examples[0]:
                out[key] = torch.tensor([ex[key] for ex in examples], dtype=torch.float32)
        return out

    def _pad(self, seqs: list[list[int]], value: int) -> tuple[torch.Tensor, torch.Tensor]:
        length = max(len(s) for s in seqs)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = torch.full((len(seqs), length), value, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s, dtype=torch.long)
            mask[i, : len(s)] = 1
        return ids, mask
