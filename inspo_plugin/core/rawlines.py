"""Lines of a local JSON-lines file that no data loader can read: found before the loader sees them.

A JSON-lines loader (``datasets``' ``json`` builder, which Axolotl uses for a local ``.jsonl``
file) parses the whole file first: one line that is not valid UTF-8, or not valid JSON (cut short,
say), fails the whole file with a message that names neither the file nor the line. This module
reads such a file line by line instead:

- :func:`read_jsonl` yields every non-blank line as a :class:`RawLine`, with its row index (the
  index the loader gives it: blank lines are not rows), its 1-based line number, and either the
  parsed object or why it cannot be read;
- :func:`write_readable_copy` writes a copy any loader reads the same way: each line becomes
  ``{RAW_COLUMN: "<the line's text>"}``, or ``{RAW_ERROR_COLUMN: "<why>"}`` for an unreadable one, so
  every row keeps its index and its exact JSON values (no column types are inferred or unified
  across rows, or across files), and a dataset strategy parses each row itself
  (:func:`parse_raw_row`) and drops and reports unreadable ones like any other invalid row
  (:func:`raw_row_error`).

Framework-free: the standard library only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspo_plugin.core.rows import InvalidPreferenceRow

RAW_COLUMN = "inspo_raw"
"""Column of a readable copy that holds the text of a readable line (else null)."""
RAW_ERROR_COLUMN = "inspo_raw_error"
"""Column of a readable copy that holds, for a line that could not be read, why (else null)."""

JSONL_SUFFIXES = (".jsonl", ".ndjson")


@dataclass(frozen=True)
class RawLine:
    """One non-blank line of a JSON-lines file."""

    index: int
    """Row index (0-based; blank lines are not rows), as the data loader numbers the rows."""
    line: int
    """Line number in the file (1-based)."""
    row: dict[str, Any] | None
    """The parsed object, or ``None`` if the line cannot be read."""
    error: str | None
    """Why the line cannot be read (``line 8: not valid UTF-8: ...``), or ``None``."""
    text: str | None = None
    """The decoded line (``None`` if it is not valid UTF-8)."""


def is_jsonl_file(path: str | Path) -> bool:
    """A local file that the ``json`` loader reads as JSON lines (``.jsonl``, ``.ndjson``, or a
    ``.json`` file whose first non-blank character opens an object rather than an array)."""
    p = Path(path)
    if not p.is_file():
        return False
    if p.suffix in JSONL_SUFFIXES:
        return True
    if p.suffix != ".json":
        return False
    with p.open("rb") as fh:
        head = fh.read(4096).lstrip()
    return head.startswith(b"{")


def read_jsonl(path: str | Path) -> Iterator[RawLine]:
    """Every non-blank line of ``path``, parsed or with the reason it cannot be."""
    index = 0
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            yield _parse_line(raw, index, number)
            index += 1


def _parse_line(raw: bytes, index: int, number: int) -> RawLine:
    try:
        text = raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        return RawLine(
            index, number, None, f"line {number}: not valid UTF-8 (byte 0x{bad} at byte {err.start})"
        )
    if index == 0 and number == 1:
        text = text.removeprefix("\ufeff")  # a UTF-8 byte-order mark
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        return RawLine(
            index, number, None, f"line {number}: not valid JSON ({err.msg}, column {err.colno})", text
        )
    if not isinstance(value, dict):
        kind = type(value).__name__
        return RawLine(index, number, None, f"line {number}: a JSON {kind}, expected an object", text)
    return RawLine(index, number, value, None, text)


def write_readable_copy(lines: list[RawLine], out: str | Path) -> Path:
    """Write each line as ``{RAW_COLUMN: text}``, or ``{RAW_ERROR_COLUMN: why}`` if it is unreadable.

    Written to a temporary name and renamed, so processes writing the same copy at once never
    leave a partial file.
    """
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            if line.error is not None:
                fh.write(json.dumps({RAW_ERROR_COLUMN: line.error}) + "\n")
            else:
                text = line.text if line.text is not None else json.dumps(line.row)
                fh.write(json.dumps({RAW_COLUMN: text.strip()}) + "\n")
    tmp.replace(target)
    return target


def raw_row_error(source: str, index: int | None, reason: str) -> InvalidPreferenceRow:
    """The error of an unreadable line, in the format of every invalid row (source, row, what)."""
    return InvalidPreferenceRow(source, index, "(whole row)", reason)


def parse_raw_row(sample: dict[str, Any]) -> dict[str, Any]:
    """The row behind a row of a readable copy (its :data:`RAW_COLUMN` parsed); other rows unchanged."""
    text = sample.get(RAW_COLUMN)
    if not isinstance(text, str):
        return sample
    value = json.loads(text)
    return value if isinstance(value, dict) else sample
