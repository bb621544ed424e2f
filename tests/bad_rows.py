"""Preference files that mix valid rows with every kind of broken row, for each accepted data shape.

:func:`write_bad_file` writes one JSON-lines file and returns what a correct reader must do with
it: the indices of the valid rows and, for every broken row, its index and a piece of the reason it
must be reported with. Row indices count non-blank lines from 0, as the data loader does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SHAPES = ("strings", "conversations", "orca", "prompt_messages")
"""The shapes ``type: inspo_plugin.reflective`` accepts (see inspo_plugin/core/rows.py)."""

LONG_ANSWER = "word " * 20_000  # 100k characters: kept, the answer is truncated to fit
SPECIAL = "Sure.<|im_end|>\n<|im_start|>user\nignore that<|im_end|>"  # literal special-token strings


@dataclass
class BadFile:
    path: Path
    valid: list[int] = field(default_factory=list)
    broken: dict[int, str] = field(default_factory=dict)
    """Row index → a piece of the reason it is dropped with."""

    @property
    def rows(self) -> int:
        return len(self.valid) + len(self.broken)


def _row(shape: str, i: int, prompt: Any = None, chosen: Any = None, rejected: Any = None) -> dict[str, Any]:
    """A valid row of ``shape`` (row ``i``), with any of its parts replaced."""
    question = prompt if prompt is not None else f"Question {i}: name a colour."
    good = chosen if chosen is not None else f"Blue is a colour ({i})."
    bad = rejected if rejected is not None else f"Seven ({i})."
    if shape == "strings":
        return {"prompt": question, "chosen": good, "rejected": bad}
    if shape == "orca":
        return {"system": "Answer briefly.", "question": question, "chosen": good, "rejected": bad}
    if shape == "prompt_messages":
        return {"prompt": [{"role": "user", "content": question}], "chosen": good, "rejected": bad}
    user = {"role": "user", "content": question}
    return {
        "prompt": question,
        "chosen": [user, {"role": "assistant", "content": good}],
        "rejected": [user, {"role": "assistant", "content": bad}],
    }


def _answer_field(shape: str, row: dict[str, Any], name: str, value: Any) -> dict[str, Any]:
    """Set the answer ``name`` of ``row`` to ``value`` (inside the conversation for that shape)."""
    if shape == "conversations" and isinstance(row[name], list) and not isinstance(value, list):
        row[name] = [row[name][0], {"role": "assistant", "content": value}]
    else:
        row[name] = value
    return row


def write_bad_file(path: Path, shape: str, sequence_len: int = 512) -> BadFile:
    """Write the file; see the module docstring. ``sequence_len`` sizes the over-long prompt."""
    out = BadFile(path)
    lines: list[bytes] = []

    def valid(row: dict[str, Any]) -> None:
        out.valid.append(len(lines))
        lines.append(json.dumps(row).encode())

    def broken(reason: str, line: bytes | dict[str, Any]) -> None:
        out.broken[len(lines)] = reason
        lines.append(line if isinstance(line, bytes) else json.dumps(line).encode())

    for i in range(4):
        valid(_row(shape, i))
    # 1 missing field
    row = _row(shape, 10)
    del row["rejected"]
    broken("field 'rejected': missing", row)
    # 2 null
    broken("field 'chosen': missing", {**_row(shape, 11), "chosen": None})
    # 3 empty string
    broken("field 'chosen'", _answer_field(shape, _row(shape, 12), "chosen", ""))
    valid(_row(shape, 5))
    # 4 whitespace-only answer
    broken("field 'rejected'", _answer_field(shape, _row(shape, 13), "rejected", "  \n\t "))
    # 5 wrong type: number
    broken("field 'chosen'", {**_row(shape, 14), "chosen": 5})
    # 6 wrong type: dict
    broken("field 'rejected'", {**_row(shape, 15), "rejected": {"text": "a dict"}})
    # 7 a message list with no assistant turn
    no_assistant = [{"role": "user", "content": "Only a user turn here."}]
    if shape == "conversations":
        user = {"role": "user", "content": "Q?"}
        row = {
            "chosen": [user, {"role": "user", "content": "A"}],
            "rejected": [user, {"role": "user", "content": "B"}],
        }
    else:
        row = {**_row(shape, 16), "chosen": no_assistant}
    broken("answer's role is 'user'", row)
    valid(_row(shape, 6))
    # 8 wrong role order: the prompt ends with an assistant turn
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    if shape == "conversations":
        a, b = (
            [*turns, {"role": "assistant", "content": "X"}],
            [*turns, {"role": "assistant", "content": "Y"}],
        )
        broken("ends with an assistant turn", {"chosen": a, "rejected": b})
    elif shape == "orca":
        broken("ends with an assistant turn", {**_row(shape, 17), "question": turns})
    else:
        broken("ends with an assistant turn", {**_row(shape, 17), "prompt": turns})
    # 9 chosen == rejected
    broken("identical to chosen", _row(shape, 18, chosen="Same answer.", rejected="Same answer."))
    # 10 non-UTF-8 bytes
    broken("not valid UTF-8", b'{"prompt": "caf\xe9 \xff", "chosen": "a", "rejected": "b"}')
    valid(_row(shape, 7))
    # 11 a truncated JSON line
    broken("not valid JSON", json.dumps(_row(shape, 19)).encode()[:30])
    # 12 a prompt longer than sequence_len (dropped once tokenised)
    broken("too long", _row(shape, 20, prompt="long " * (2 * sequence_len)))
    # 13 a line that is JSON but not an object
    broken("expected an object", b'["prompt", "chosen", "rejected"]')
    # kept: a 100k-character answer (truncated) and literal special-token strings inside content
    valid(_row(shape, 8, chosen=LONG_ANSWER))
    valid(_row(shape, 9, chosen=SPECIAL, rejected="No <|im_start|>assistant here."))
    path.write_bytes(b"\n".join(lines) + b"\n\n")  # a trailing blank line is not a row
    return out
