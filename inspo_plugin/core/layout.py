"""The per-row layout: from one tokenised pair to the columns training reads, in one place.

Columns a dataset strategy may add before tokenisation (the Axolotl strategy does):

    inspo_row           index of the row in its source file
    inspo_source        the source (file and dataset entry), for error messages and reports
    inspo_drop_reason   empty, or why the row cannot be trained on (it is then dropped and reported)
    inspo_messages      the normalised conversation as JSON (see :mod:`~inspo_plugin.core.rows`)

Columns :func:`layout_row` writes from ``prompt_ids`` / ``chosen_ids`` / ``rejected_ids``:

    prompt_ids, chosen_ids, rejected_ids   the pieces after the truncation policy — the plain DPO
                                           pair, which the reference scores exactly as DPO does
    inspo_ids_a, inspo_segments_a          A = x · y_w · bridge · y_l and its segment labels
    inspo_ids_b, inspo_segments_b          B = x · y_l · bridge · y_w and its segment labels

so the collator (:mod:`~inspo_plugin.core.collator`) only pads. This module needs no framework.
"""

from __future__ import annotations

from collections.abc import Sequence

from inspo_plugin.core.sequences import (
    ReflectionFormat,
    ReflectivePair,
    build_reflective_pair,
    strip_duplicate_bos,
)

ROW_COLUMN = "inspo_row"
SOURCE_COLUMN = "inspo_source"
DROP_COLUMN = "inspo_drop_reason"
MESSAGES_COLUMN = "inspo_messages"
IDS_A_COLUMN = "inspo_ids_a"
SEGMENTS_A_COLUMN = "inspo_segments_a"
IDS_B_COLUMN = "inspo_ids_b"
SEGMENTS_B_COLUMN = "inspo_segments_b"
LAYOUT_COLUMNS = (IDS_A_COLUMN, SEGMENTS_A_COLUMN, IDS_B_COLUMN, SEGMENTS_B_COLUMN)
"""The columns :func:`layout_row` adds to TRL's three."""


def reflective_pair(
    prompt_ids: Sequence[int],
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    fmt: ReflectionFormat,
    max_length: int | None = None,
    bos_token_id: int | None = None,
) -> ReflectivePair:
    """Truncate one tokenised pair and attach its bridges (a duplicated BOS is removed first).

    Raises:
        RowTooLong: the prompt and the bridge leave no room for the answers within ``max_length``.
    """
    prompt = strip_duplicate_bos(prompt_ids, bos_token_id)
    return build_reflective_pair(prompt, chosen_ids, rejected_ids, fmt, max_length)


def pair_columns(pair: ReflectivePair) -> dict[str, list[int]]:
    """The dataset columns of one laid-out pair (see the module docstring)."""
    ids_a, segments_a = pair.sequence_a()
    ids_b, segments_b = pair.sequence_b()
    return {
        "prompt_ids": pair.prompt_ids,
        "chosen_ids": pair.chosen_ids,
        "rejected_ids": pair.rejected_ids,
        IDS_A_COLUMN: ids_a,
        SEGMENTS_A_COLUMN: segments_a,
        IDS_B_COLUMN: ids_b,
        SEGMENTS_B_COLUMN: segments_b,
    }


def layout_row(
    prompt_ids: Sequence[int],
    chosen_ids: Sequence[int],
    rejected_ids: Sequence[int],
    fmt: ReflectionFormat,
    max_length: int | None = None,
    bos_token_id: int | None = None,
) -> dict[str, list[int]]:
    """Lay out one tokenised pair: :func:`reflective_pair`, then :func:`pair_columns`.

    Raises:
        RowTooLong: as :func:`reflective_pair`.
    """
    return pair_columns(reflective_pair(prompt_ids, chosen_ids, rejected_ids, fmt, max_length, bos_token_id))
