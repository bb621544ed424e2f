"""Preference rows: normalise the common dataset shapes and reject bad input with a precise error.

Accepted shapes (field names configurable through :class:`RowFields`):

- ``prompt`` / ``chosen`` / ``rejected`` strings;
- ``chosen`` / ``rejected`` as full conversations sharing the prompt turns, the last turn being
  the assistant answer (UltraFeedback-binarized, princeton-nlp ``*-armorm`` shape);
- ``question`` / ``chosen`` / ``rejected`` with an optional ``system`` string (orca_dpo_pairs shape);
- ``prompt`` as a list of messages with string or single-message answers.

The result is TRL's conversational format: ``prompt`` a list of messages, ``chosen`` and
``rejected`` a one-message list each (the assistant answer).

Rows already in TRL's format are checked unchanged by :func:`validate_trl_row`; rows without a
``prompt`` (TRL's implicit prompt) by :func:`check_implicit_prompt_row` before a framework adapter
extracts the shared prompt, and by :func:`validate_trl_row` after.

Every problem names the source, the row and the field; a caller either raises it
(``on_invalid_row: error``) or counts and reports the row (``skip``) — rows never vanish silently.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Message = dict[str, str]


class InvalidPreferenceRow(ValueError):
    """A row that cannot be used, with where and why."""

    def __init__(self, source: str, row: int | None, field_name: str, reason: str) -> None:
        self.source, self.row, self.field, self.reason = source, row, field_name, reason
        where = f"row {row}" if row is not None else "a row"
        super().__init__(f"{source}: {where}, field {field_name!r}: {reason}")


ON_INVALID_ROW: tuple[str, ...] = ("error", "skip")
"""What an unusable row does: ``error`` raises :class:`InvalidPreferenceRow`; ``skip`` drops and reports it."""


@dataclass(frozen=True)
class RowFields:
    """Column names of the preference data (options ``field_<name>`` of a dataset strategy)."""

    prompt: str = field(default="prompt", metadata={"help": "Column of the prompt (string or messages)."})
    chosen: str = field(
        default="chosen",
        metadata={"help": "Column of the preferred answer (string, message or conversation)."},
    )
    rejected: str = field(
        default="rejected",
        metadata={"help": "Column of the dispreferred answer (string, message or conversation)."},
    )
    system: str = field(default="system", metadata={"help": "Optional column with a system message."})
    question: str = field(
        default="question", metadata={"help": "Prompt column used when the prompt column is absent."}
    )


def normalize_row(
    row: Mapping[str, Any], index: int | None = None, source: str = "dataset", fields: RowFields | None = None
) -> dict[str, list[Message]]:
    """Turn one row of any accepted shape into ``{"prompt": [...], "chosen": [...], "rejected": [...]}``.

    Raises:
        InvalidPreferenceRow: naming ``source``, ``index`` and the offending field.
    """
    f = fields or RowFields()

    def fail(field_name: str, reason: str) -> InvalidPreferenceRow:
        return InvalidPreferenceRow(source, index, field_name, reason)

    for name in (f.chosen, f.rejected):
        if name not in row or row[name] is None:
            raise fail(name, f"missing (columns present: {', '.join(sorted(row)) or 'none'})")

    chosen_raw, rejected_raw = row[f.chosen], row[f.rejected]
    prompt_from_conversation: list[Message] | None = None
    if _is_message_list(chosen_raw) and len(chosen_raw) > 1:
        # Full conversations: the shared turns are the prompt, the last turn is the answer.
        chosen_msgs = _messages(chosen_raw, f.chosen, fail)
        rejected_msgs = _messages(rejected_raw, f.rejected, fail) if _is_message_list(rejected_raw) else None
        if rejected_msgs is None or len(rejected_msgs) < 2:
            raise fail(f.rejected, "must be a conversation like the chosen one (a list of messages)")
        if chosen_msgs[:-1] != rejected_msgs[:-1]:
            raise fail(f.rejected, "its prompt turns differ from those of the chosen conversation")
        prompt_from_conversation = chosen_msgs[:-1]
        chosen_answer, rejected_answer = chosen_msgs[-1], rejected_msgs[-1]
    else:
        chosen_answer = _answer(chosen_raw, f.chosen, fail)
        rejected_answer = _answer(rejected_raw, f.rejected, fail)
    for name, answer in ((f.chosen, chosen_answer), (f.rejected, rejected_answer)):
        if answer["role"] != "assistant":
            raise fail(name, f"the answer's role is {answer['role']!r}, expected 'assistant'")

    if prompt_from_conversation is not None:
        prompt = prompt_from_conversation
    else:
        prompt_field = f.prompt if row.get(f.prompt) is not None else f.question
        if row.get(prompt_field) is None:
            raise fail(f.prompt, f"missing (also looked for {f.question!r})")
        raw_prompt = row[prompt_field]
        if isinstance(raw_prompt, str):
            if not raw_prompt.strip():
                raise fail(prompt_field, "empty")
            prompt = [{"role": "user", "content": raw_prompt}]
        elif _is_message_list(raw_prompt):
            prompt = _messages(raw_prompt, prompt_field, fail)
        else:
            raise fail(
                prompt_field, f"expected a string or a list of messages, got {type(raw_prompt).__name__}"
            )
    system = row.get(f.system)
    if system is not None and prompt[0]["role"] != "system":
        if not isinstance(system, str):
            raise fail(f.system, f"expected a string, got {type(system).__name__}")
        if system.strip():
            prompt = [{"role": "system", "content": system}, *prompt]
    if not any(m["role"] == "user" for m in prompt):
        raise fail(f.prompt, "the prompt has no user turn")
    if prompt[-1]["role"] == "assistant":
        raise fail(f.prompt, "the prompt ends with an assistant turn; it must end with the user's request")

    if chosen_answer["content"].strip() == rejected_answer["content"].strip():
        raise fail(f.rejected, "identical to chosen (no preference to learn)")
    return {"prompt": prompt, "chosen": [chosen_answer], "rejected": [rejected_answer]}


IMPLICIT_PROMPT_NOTE = (
    "there is no 'prompt' column, so the prompt is the beginning that chosen and rejected share "
    "(TRL's extract_prompt)"
)
"""Appended to the errors of rows whose prompt was extracted, so an emptied answer is explained."""


def validate_trl_row(
    row: Mapping[str, Any], index: int | None = None, source: str = "dataset", implicit_prompt: bool = False
) -> None:
    """Check a row already in TRL's format (strings, or conversational lists) without changing it.

    Args:
        implicit_prompt: the prompt was extracted from ``chosen``/``rejected`` (see
            :func:`check_implicit_prompt_row`); an empty prompt or answer is then an error that says so.
    """

    def fail(field_name: str, reason: str) -> InvalidPreferenceRow:
        note = f" ({IMPLICIT_PROMPT_NOTE})" if implicit_prompt else ""
        return InvalidPreferenceRow(source, index, field_name, reason + note)

    texts: dict[str, str] = {}
    for name in ("prompt", "chosen", "rejected"):
        value = row.get(name)
        if value is None:
            raise fail(name, "missing")
        if isinstance(value, str):
            if (name != "prompt" or implicit_prompt) and not value.strip():
                raise fail(name, "empty")
            texts[name] = value
        elif _is_message_list(value):
            msgs = _messages(value, name, fail)
            if not msgs:
                raise fail(name, "empty list of messages")
            texts[name] = msgs[-1]["content"]
        else:
            raise fail(name, f"expected a string or a list of messages, got {type(value).__name__}")
    if texts["chosen"].strip() == texts["rejected"].strip():
        raise fail("rejected", "identical to chosen (no preference to learn)")


def check_implicit_prompt_row(
    row: Mapping[str, Any], index: int | None = None, source: str = "dataset"
) -> None:
    """Check the columns a shared prompt is extracted from, before extracting it.

    A row without a ``prompt`` column (TRL's "implicit prompt" shape) carries the prompt at the start
    of both ``chosen`` and ``rejected``; the extraction itself (TRL's ``extract_prompt``) assumes both
    are present, non-empty and of one kind, so anything else is reported here, naming the field.
    After the extraction, :func:`validate_trl_row` with ``implicit_prompt=True`` checks the result.
    """

    def fail(field_name: str, reason: str) -> InvalidPreferenceRow:
        return InvalidPreferenceRow(source, index, field_name, f"{reason} ({IMPLICIT_PROMPT_NOTE})")

    kinds: dict[str, str] = {}
    for name in ("chosen", "rejected"):
        value = row.get(name)
        if value is None:
            raise fail(name, "missing")
        if isinstance(value, str):
            if not value.strip():
                raise fail(name, "empty")
            kinds[name] = "a string"
        elif _is_message_list(value):
            _messages(value, name, fail)
            kinds[name] = "a list of messages"
        else:
            raise fail(name, f"expected a string or a list of messages, got {type(value).__name__}")
    if kinds["chosen"] != kinds["rejected"]:
        raise fail("rejected", f"is {kinds['rejected']} but chosen is {kinds['chosen']}")


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, Mapping) for m in value)


def _messages(value: Sequence[Any], name: str, fail: Any) -> list[Message]:
    out: list[Message] = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping):
            raise fail(name, f"message {i} is a {type(message).__name__}, expected a mapping")
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not role:
            raise fail(name, f"message {i} has no 'role'")
        if not isinstance(content, str):
            raise fail(name, f"message {i} content is {type(content).__name__}, expected a string")
        if not content.strip():
            raise fail(name, f"message {i} ({role}) is empty")
        out.append({"role": role, "content": content})
    if not out:
        raise fail(name, "empty list of messages")
    return out


def _answer(value: Any, name: str, fail: Any) -> Message:
    if isinstance(value, str):
        if not value.strip():
            raise fail(name, "empty")
        return {"role": "assistant", "content": value}
    if isinstance(value, Mapping):
        return _messages([value], name, fail)[0]
    if _is_message_list(value):
        return _messages(value, name, fail)[-1]
    raise fail(name, f"expected a string or messages, got {type(value).__name__}")


@dataclass
class DropReport:
    """Rows left out of training, with why; logged as a summary and written out in full."""

    source: str
    rows_in: int = 0
    dropped: list[tuple[int, str]] = field(default_factory=list)
    streaming: bool = False
    """Rows are counted as they stream past: ``rows_in`` is the number read so far."""

    def add(self, row: int, reason: str) -> None:
        # Rows arrive in (possibly shuffled) dataset order; keep the list in row order, one insertion
        # each (after equal rows, as a stable sort would put them), not a sort per added row.
        bisect.insort(self.dropped, (row, reason), key=lambda item: item[0])

    def summary(self) -> str:
        rows = "rows read so far" if self.streaming else "rows"
        if not self.dropped:
            return f"{self.source}: all {self.rows_in} {rows} kept"
        by_reason: dict[str, int] = {}
        for _, reason in self.dropped:
            key = reason.split(": ")[0]
            by_reason[key] = by_reason.get(key, 0) + 1
        first = ", ".join(f"row {r} ({why})" for r, why in self.dropped[:5])
        more = f" and {len(self.dropped) - 5} more" if len(self.dropped) > 5 else ""
        kinds = "; ".join(f"{n}× {k}" for k, n in sorted(by_reason.items()))
        return f"{self.source}: dropped {len(self.dropped)} of {self.rows_in} {rows} [{kinds}]: {first}{more}"

    def write(self, path: str | Path) -> Path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w") as fh:
            for row, reason in self.dropped:
                fh.write(json.dumps({"source": self.source, "row": row, "reason": reason}) + "\n")
        return out
