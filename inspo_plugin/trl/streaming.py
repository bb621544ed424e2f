"""Streaming (``IterableDataset``) data in the InSPO trainer: lazy row checks, every drop counted.

A map-style dataset is checked, tokenised and laid out once, before training, and its dropped rows
are reported then. A streaming dataset has no length and is read lazily, possibly many times (each
epoch, each evaluation, and the peeks TRL takes at its first row), so its drops are counted as the
rows stream past:

- :data:`POSITION_COLUMN` numbers the rows in stream order (each pass counts from 0 again); a row
  is named in reports by its ``inspo_row`` if the dataset has that column, else by this position in
  the first pass (for a shuffled stream, its place in that pass's order);
- :class:`StreamingDrops` is the ``filter`` predicate of one drop stage: it records each position's
  verdict once (a later pass over the same positions adds nothing), or raises at the first invalid
  row with ``on_invalid_row: error``;
- :class:`DropReportCallback` publishes the growing reports at each log step, after each evaluation
  and at the end of training.

The predicates record in the process that iterates the data; :func:`check_streaming_workers` refuses
DataLoader worker processes, whose records would never reach the trainer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transformers import TrainerCallback

from inspo_plugin.core.layout import DROP_COLUMN, ROW_COLUMN, SOURCE_COLUMN
from inspo_plugin.core.rows import DropReport

POSITION_COLUMN = "inspo_stream_position"
"""Position of a row in its stream (0, 1, …); the row's name in reports stays ``inspo_row``."""


def reason_with_source(reason: str, source: str | None) -> str:
    """``kind: detail`` → ``kind: source: detail``, unless the detail already names the source."""
    if source is None or source in reason:
        return reason
    kind, _, detail = reason.partition(": ")
    return f"{kind}: {source}: {detail}"


def invalid_row_error(first_reason: str, count: str) -> ValueError:
    """The error of ``on_invalid_row: error``: the first invalid row (source, row, field) and how to skip."""
    return ValueError(
        f"{first_reason.removeprefix('invalid: ')} ({count}; set on_invalid_row: skip to drop and report "
        "them instead)"
    )


class StreamingDrops:
    """The ``filter`` predicate of one drop stage of a streaming dataset; keeps the rows with no reason.

    Args:
        report: the dataset's report, shared by its stages; dropped rows are added to it.
        raise_invalid: raise at the first row flagged ``invalid:`` (``on_invalid_row: error``).
        counts_rows: this is the first stage, which sees every row and sets ``report.rows_in``.
    """

    def __init__(self, report: DropReport, raise_invalid: bool, counts_rows: bool) -> None:
        self.report, self.raise_invalid, self.counts_rows = report, raise_invalid, counts_rows
        self._recorded_up_to = -1  # highest stream position whose verdict is in the report

    def __call__(self, row: Mapping[str, Any]) -> bool:
        reason = row[DROP_COLUMN]
        if reason and self.raise_invalid and reason.startswith("invalid:"):
            raise invalid_row_error(reason, "the first invalid row of this streaming dataset")
        position = row[POSITION_COLUMN]
        if position > self._recorded_up_to:
            # Positions rise within a pass; one already recorded was seen in an earlier pass.
            self._recorded_up_to = position
            if self.counts_rows:
                self.report.rows_in = position + 1
            if reason:
                self.report.add(row[ROW_COLUMN], reason_with_source(reason, row.get(SOURCE_COLUMN)))
        return not reason


class DropReportCallback(TrainerCallback):
    """Publishes the reports of streaming datasets as they grow, and once more at the end of training.

    Args:
        reports: the trainer's ``drop_reports`` (read at each event, so later datasets are included).
        publish: logs a report's summary and writes its file (the trainer's ``_report``).
    """

    def __init__(self, reports: Mapping[str, DropReport], publish: Callable[[DropReport], None]) -> None:
        self.reports, self.publish = reports, publish
        self._published: dict[str, int] = {}  # source → dropped rows at the last publication

    def _publish(self, state: Any, final: bool) -> None:
        if not state.is_world_process_zero:
            return
        for name, report in self.reports.items():
            if not report.streaming:
                continue
            if final or self._published.get(name) != len(report.dropped):
                self.publish(report)
                self._published[name] = len(report.dropped)

    def on_log(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._publish(state, final=False)

    def on_evaluate(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._publish(state, final=False)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._publish(state, final=True)


def check_streaming_workers(args: Any, dataset_name: str) -> None:
    """Refuse DataLoader worker processes for a streaming dataset: its drops are counted in-process."""
    workers = getattr(args, "dataloader_num_workers", 0) or 0
    if workers > 0:
        raise ValueError(
            f"InSPO: the streaming {dataset_name} dataset is checked lazily and its dropped rows are counted "
            f"in the process that reads it; with dataloader_num_workers={workers} they would be counted in "
            "worker processes and lost. Set dataloader_num_workers=0 (tokenisation is light next to the "
            "forward passes), or use a map-style Dataset."
        )
