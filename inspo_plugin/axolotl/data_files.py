"""Local JSON-lines data files of an ``rl: inspo`` run, checked before Axolotl loads them.

Called from the plugin's ``load_datasets`` hook, which Axolotl runs in ``axolotl train`` and
``axolotl preprocess`` before it loads any dataset (and long before the model). For every dataset
whose ``path`` is a local JSON-lines file (:func:`~inspo_plugin.core.rawlines.is_jsonl_file`):

- every line is read (:mod:`~inspo_plugin.core.rawlines`): a line that is not valid UTF-8 or not a
  JSON object would make the loader fail on the whole file without naming it or the line;
- for ``type: inspo_plugin.reflective``, every row is also checked as the dataset strategy checks it
  (:func:`~inspo_plugin.core.rows.normalize_row`), so that

  - with ``inspo.on_invalid_row: error`` the run stops at the first unusable row or line, naming
    file, row and field, before anything is loaded;
  - a file without a single usable row stops the run with the count of each reason;
  - the loader reads a copy (under ``<dataset_prepared_path>/inspo-raw/``, named by the file's
    content hash; :func:`~inspo_plugin.core.rawlines.write_readable_copy`) that holds each line's
    text in one string column: unreadable lines do not cost the readable ones (each is a row the
    strategy drops and reports with its file, row and reason, like any other invalid row), and rows
    whose fields change type from row to row, or files of different shapes in one run, load and
    merge as they are (the strategy parses each row itself). :func:`original_path` maps the copy
    back to the user's file for every message;

- for other dataset types an unreadable line stops the run with file, row and line (they cannot
  drop a row and report it).

Files given by other means (Hub datasets, directories, ``data_files``) are left to the loader.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from inspo_plugin.axolotl.args import read_block
from inspo_plugin.core.rawlines import RawLine, is_jsonl_file, raw_row_error, read_jsonl, write_readable_copy
from inspo_plugin.core.rows import DropReport, InvalidPreferenceRow, RowFields, normalize_row

logger = logging.getLogger(__name__)

STRATEGY = "inspo_plugin.reflective"
COPY_DIR = "inspo-raw"
SOURCE_SUFFIX = ".source"
"""The copy ``x.jsonl`` has a neighbour ``x.jsonl.source`` holding the path of the user's file."""
SKIP_HINT = "set inspo.on_invalid_row: skip to drop and report such rows"


def original_path(path: str) -> str:
    """The user's file behind a readable copy made by :func:`check_data_files`, else ``path``."""
    sidecar = Path(f"{path}{SOURCE_SUFFIX}")
    return sidecar.read_text(encoding="utf-8").strip() if sidecar.is_file() else path


def dataset_source(path: str, key: str, index: int) -> str:
    """How messages name a dataset entry: ``<file> (datasets[0])``."""
    return f"{original_path(path)} ({key}[{index}])" if path else f"{key}[{index}]"


def check_data_files(cfg: Any, prepared_path: str | Path | None = None) -> None:
    """Check the local JSON-lines files of ``cfg.datasets`` / ``cfg.test_datasets`` (see the module).

    Rewrites the ``path`` of each checked ``type: inspo_plugin.reflective`` entry to its readable copy.

    Raises:
        ValueError: an unusable row with ``on_invalid_row: error`` (file, row, field), a file with no
            usable row, or an unreadable line in a dataset of another type.
    """
    options, fields = read_block(_get(cfg, "inspo"))
    prepared = Path(prepared_path or _get(cfg, "dataset_prepared_path") or "last_run_prepared")
    for key in ("datasets", "test_datasets"):
        for index, entry in enumerate(_get(cfg, key) or []):
            path = _get(entry, "path")
            if not isinstance(path, str) or not is_jsonl_file(path):
                continue
            source = dataset_source(path, key, index)
            lines = list(read_jsonl(path))
            unreadable = [line for line in lines if line.error is not None]
            if _get(entry, "type") != STRATEGY:
                if unreadable:
                    first = unreadable[0]
                    raise ValueError(
                        f"{raw_row_error(source, first.index, first.error or '')} ({len(unreadable)} "
                        f"unreadable lines in total; type {_get(entry, 'type')!r} cannot drop rows: fix "
                        f"them, or use type: {STRATEGY} with inspo.on_invalid_row: skip)"
                    )
                continue
            report = _check_rows(lines, source, fields, options.on_invalid_row == "error")
            if len(report.dropped) == len(lines):
                raise ValueError(
                    f"InSPO: {source} has no usable row, nothing to train on from it "
                    f"({report.summary()}). Check the file and the inspo.field_* column names."
                )
            if report.dropped:
                logger.warning(
                    "InSPO: %s (these rows are dropped and listed in the dropped-rows report)",
                    report.summary(),
                )
            copy = _readable_copy(Path(path), lines, prepared / COPY_DIR)
            entry["path"] = str(copy)
            if unreadable:
                logger.warning(
                    "InSPO: %s: %d unreadable lines (first: %s); they are dropped rows, the others are read",
                    source,
                    len(unreadable),
                    unreadable[0].error,
                )


def _check_rows(lines: list[RawLine], source: str, fields: RowFields, stop: bool) -> DropReport:
    report = DropReport(source=source, rows_in=len(lines))
    for line in lines:
        try:
            if line.error is not None:
                raise raw_row_error(source, line.index, line.error)
            normalize_row(line.row or {}, index=line.index, source=source, fields=fields)
        except InvalidPreferenceRow as err:
            if stop:
                raise ValueError(f"{err} ({SKIP_HINT})") from err
            report.add(line.index, f"invalid: {err}")
    return report


def _readable_copy(path: Path, lines: list[RawLine], folder: Path) -> Path:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    copy = write_readable_copy(lines, folder / f"{path.stem}-{digest}.jsonl")
    sidecar = Path(f"{copy}{SOURCE_SUFFIX}")
    sidecar.write_text(str(path), encoding="utf-8")
    return copy


def _get(obj: Any, key: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)
