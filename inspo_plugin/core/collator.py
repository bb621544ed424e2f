"""Padding a batch of laid-out rows (torch only).

The rows already hold the reflective sequences and their segment labels
(:func:`~inspo_plugin.core.layout.layout_row`); this collator only pads them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from inspo_plugin.core.layout import IDS_A_COLUMN, IDS_B_COLUMN, SEGMENTS_A_COLUMN, SEGMENTS_B_COLUMN
from inspo_plugin.core.sequences import Segment


@dataclass
class DataCollatorForReflectivePreference:
    """Pads the reflective sequences of a batch of ``B`` laid-out rows.

    Returns ``inspo_input_ids`` / ``inspo_attention_mask`` / ``inspo_segment_ids``, each ``[2B, L]``,
    holding ``[A_1 … A_B, B_1 … B_B]``, right-padded (segment :attr:`Segment.PAD` on padding). The
    attention mask comes from the sequence lengths, never from ``ids != pad_id``: with pad = EOS
    that would hide the real end-of-turn tokens between the two answers.
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = None

    def __call__(self, examples: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [ex[IDS_A_COLUMN] for ex in examples] + [ex[IDS_B_COLUMN] for ex in examples]
        segments = [ex[SEGMENTS_A_COLUMN] for ex in examples] + [ex[SEGMENTS_B_COLUMN] for ex in examples]
        length = max(len(s) for s in ids)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        out = {
            "inspo_input_ids": torch.full((len(ids), length), self.pad_token_id, dtype=torch.long),
            "inspo_attention_mask": torch.zeros((len(ids), length), dtype=torch.long),
            "inspo_segment_ids": torch.full((len(ids), length), int(Segment.PAD), dtype=torch.long),
        }
        for i, (row_ids, row_segments) in enumerate(zip(ids, segments, strict=True)):
            n = len(row_ids)
            out["inspo_input_ids"][i, :n] = torch.tensor(row_ids, dtype=torch.long)
            out["inspo_attention_mask"][i, :n] = 1
            out["inspo_segment_ids"][i, :n] = torch.tensor(row_segments, dtype=torch.long)
        return out
