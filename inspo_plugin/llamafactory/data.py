"""LLaMA-Factory's pairwise data, laid out as InSPO's reflective sequences.

LLaMA-Factory loads a ``ranking: true`` dataset (alpaca or sharegpt) from ``dataset_info.json``,
aligns it (``_prompt``, ``_response``, ...) and tokenises it with its ``PairwiseDatasetProcessor``.
Three call-time names of ``llamafactory.data.loader`` are replaced (see :mod:`.patch`):

- ``align_dataset``: after LLaMA-Factory's own alignment, each row gets its index in its source file
  (:data:`ROW_KEY`), the file (:data:`SOURCE_KEY`) and a verdict on the raw row (:data:`VERDICT_KEY`),
  which names the field of the dataset that is unusable — the aligned row no longer has it;
- ``PairwiseDatasetProcessor``: :class:`InSPOPairwiseDatasetProcessor` tokenises prompt and answers
  with LLaMA-Factory's template exactly as its DPO does (``encode_oneturn``, the EOS of
  ``efficient_eos`` templates), then applies InSPO's layout and truncation policy
  (:func:`~inspo_plugin.core.layout.layout_row`: prompt and bridge never cut, responses shortened from
  the tail) instead of LLaMA-Factory's ``infer_seqlen``, with ``cutoff_len`` bounding each reflective
  sequence. A row that cannot be used keeps its place with the reason in ``inspo_drop_reason``;
- ``_get_preprocessed_dataset``: drops those rows into a :class:`~inspo_plugin.core.rows.DropReport`
  (logged, and written to ``<output_dir>/inspo_dropped_rows_<train|eval>.jsonl``), or with
  ``on_invalid_row: error`` stops at the first invalid row, naming file, row and field.

The bridge between the two answers is read from LLaMA-Factory's template object, in token ids
(:func:`reflection_format`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llamafactory.data.processor import PairwiseDatasetProcessor

from inspo_plugin.core.layout import (
    DROP_COLUMN,
    LAYOUT_COLUMNS,
    ROW_COLUMN,
    SOURCE_COLUMN,
    layout_row,
)
from inspo_plugin.core.rows import DropReport, InvalidPreferenceRow
from inspo_plugin.core.sequences import (
    _SENTINEL_ANSWER,
    _SENTINEL_USER,
    ReflectionFormat,
    RowTooLong,
    reflection_message,
)
from inspo_plugin.options import InSPOOptions

logger = logging.getLogger(__name__)

ROW_KEY = "_inspo_row"
SOURCE_KEY = "_inspo_source"
VERDICT_KEY = "_inspo_verdict"

STATE: dict[str, Any] = {}
"""The options of this run (``options``), set by :func:`.patch.install` before LLaMA-Factory runs.

Module state rather than a closure, so that the processor class pickles by reference into
LLaMA-Factory's ``preprocessing_num_workers`` processes.
"""


def _options() -> InSPOOptions:
    options = STATE.get("options")
    if not isinstance(options, InSPOOptions):
        raise RuntimeError("InSPO's LLaMA-Factory data path is used without its options (patch.install)")
    return options


# -- the bridge -----------------------------------------------------------------------------------


def reflection_format(template: Any, tokenizer: Any, options: InSPOOptions) -> ReflectionFormat:
    """What LLaMA-Factory's ``template`` puts after an answer's content, in token ids.

    The template encodes the conversation ``user · answer · reflection user turn · answer`` with
    ``encode_multiturn``; the first answer's encoding is its content followed by the turn end (located
    by the content's token ids), and the second turn's prompt is the reflection turn with the next
    assistant header. ``revise``/``custom``: turn end + reflection turn; ``concat``: turn end only. An
    ``efficient_eos`` template's EOS, which LLaMA-Factory's DPO appends to each answer, is part of the
    turn end.
    """
    message = reflection_message(options.template, options.reflection_prompt)
    messages = [
        {"role": "user", "content": _SENTINEL_USER},
        {"role": "assistant", "content": _SENTINEL_ANSWER},
        {"role": "user", "content": message or _SENTINEL_USER},
        {"role": "assistant", "content": _SENTINEL_ANSWER},
    ]
    (_, first_answer), (second_prompt, _) = template.encode_multiturn(tokenizer, messages)
    content = tokenizer.encode(_SENTINEL_ANSWER, add_special_tokens=False)
    start = _find(first_answer, content)
    if start < 0:
        raise ValueError(
            "could not locate an answer's tokens in the LLaMA-Factory template's encoding of it; "
            "the template changes an answer's content"
        )
    turn_end = list(first_answer[start + len(content) :])
    if template.efficient_eos:
        turn_end.append(tokenizer.eos_token_id)
    if not turn_end:
        raise ValueError("the LLaMA-Factory template puts nothing after an assistant answer (no end of turn)")
    ids = turn_end if options.template == "concat" else turn_end + list(second_prompt)
    return ReflectionFormat(options.template, tuple(ids), message, tokenizer.decode(ids))


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int:
    n = len(needle)
    for i in range(len(haystack) - n + 1):
        if list(haystack[i : i + n]) == list(needle):
            return i
    return -1


# -- row numbering and raw-row checks (wraps llamafactory.data.loader.align_dataset) ---------------


def wrap_align_dataset(align_dataset: Callable[..., Any]) -> Callable[..., Any]:
    """``align_dataset`` that also numbers the rows, names their file and checks the raw rows."""

    def align(dataset: Any, dataset_attr: Any, data_args: Any, training_args: Any) -> Any:
        aligned = align_dataset(dataset, dataset_attr, data_args, training_args)
        source = _source_name(dataset_attr, data_args)
        indices = getattr(dataset, "_indices", None)  # rows picked by num_samples keep their file index
        rows = indices.column(0).to_pylist() if indices is not None else list(range(len(dataset)))
        verdicts = [
            _raw_verdict(example, dataset_attr, source, row)
            for example, row in zip(dataset, rows, strict=True)
        ]
        aligned = aligned.add_column(ROW_KEY, rows)
        aligned = aligned.add_column(SOURCE_KEY, [source] * len(rows))
        return aligned.add_column(VERDICT_KEY, verdicts)

    align.__wrapped__ = align_dataset  # type: ignore[attr-defined]
    return align


def _source_name(dataset_attr: Any, data_args: Any) -> str:
    if dataset_attr.load_from == "file":
        return str(Path(data_args.dataset_dir) / dataset_attr.dataset_name)
    return str(dataset_attr.dataset_name)


def _raw_verdict(example: Mapping[str, Any], attr: Any, source: str, row: int) -> str:
    """``""``, or why the raw row cannot be used, naming the dataset's own field."""

    def problem(field: str, reason: str) -> str:
        return f"invalid: {InvalidPreferenceRow(source, row, field, reason)}"

    if attr.formatting == "alpaca":
        for field in (attr.chosen, attr.rejected):
            value = example.get(field)
            if value is None:
                return problem(field, "missing")
            if not isinstance(value, str):
                return problem(field, f"expected a string, got {type(value).__name__}")
            if not value.strip():
                return problem(field, "empty")
        query = [
            example.get(attr.prompt) if attr.prompt else None,
            example.get(attr.query) if attr.query else None,
        ]
        if not any(isinstance(q, str) and q.strip() for q in query):
            return problem(attr.prompt or "instruction", "empty (and no input either)")
        if example[attr.chosen].strip() == example[attr.rejected].strip():
            return problem(attr.rejected, "identical to chosen (no preference to learn)")
        return ""
    if attr.formatting == "sharegpt":
        messages = example.get(attr.messages)
        if not isinstance(messages, list) or not messages:
            return problem(attr.messages, "expected a non-empty list of messages")
        if (
            attr.system_tag
            and isinstance(messages[0], Mapping)
            and messages[0].get(attr.role_tag) == attr.system_tag
        ):
            messages = messages[1:]
        odd = (attr.user_tag, attr.observation_tag)
        even = (attr.assistant_tag, attr.function_tag)
        for i, message in enumerate(messages):
            if not isinstance(message, Mapping):
                return problem(
                    attr.messages, f"message {i} is a {type(message).__name__}, expected a mapping"
                )
            role, content = message.get(attr.role_tag), message.get(attr.content_tag)
            expected = odd if i % 2 == 0 else even
            if role not in expected:
                return problem(
                    attr.messages, f"message {i} has role {role!r}, expected one of {list(expected)}"
                )
            if not isinstance(content, str) or not content.strip():
                return problem(attr.messages, f"message {i} ({role}) is empty or not a string")
        if len(messages) % 2 == 0:
            return problem(attr.messages, "must end with the user's turn (an odd number of turns)")
        answers = []
        for field in (attr.chosen, attr.rejected):
            value = example.get(field)
            if not isinstance(value, Mapping):
                return problem(field, f"expected a message, got {type(value).__name__}")
            if value.get(attr.role_tag) not in even:
                return problem(field, f"role {value.get(attr.role_tag)!r} is not an assistant role")
            content = value.get(attr.content_tag)
            if not isinstance(content, str) or not content.strip():
                return problem(field, "empty or not a string")
            answers.append(content.strip())
        if answers[0] == answers[1]:
            return problem(attr.rejected, "identical to chosen (no preference to learn)")
        return ""
    return ""  # other formats: the aligned row is checked by the processor


# -- tokenisation and layout (replaces llamafactory.data.loader.PairwiseDatasetProcessor) ----------


class InSPOPairwiseDatasetProcessor(PairwiseDatasetProcessor):  # type: ignore[misc]
    """LLaMA-Factory's pairwise tokenisation, then InSPO's reflective layout (one output row per input row)."""

    _format: ReflectionFormat | None = None

    def reflection(self) -> ReflectionFormat:
        if self._format is None:
            self._format = reflection_format(self.template, self.tokenizer, _options())
        return self._format

    def preprocess_dataset(self, examples: dict[str, list[Any]]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        fmt = self.reflection()
        n = len(examples["_prompt"])
        rows = examples.get(ROW_KEY) or list(range(n))
        sources = examples.get(SOURCE_KEY) or ["dataset"] * n
        verdicts = examples.get(VERDICT_KEY) or [""] * n
        for i in range(n):
            columns: dict[str, Any] = {key: [] for key in LAYOUT_COLUMNS}
            reason = verdicts[i] or self._aligned_verdict(examples, i, sources[i], rows[i])
            if not reason:
                prompt_ids, chosen_ids, rejected_ids = self._pieces(examples, i)
                try:
                    columns = layout_row(
                        prompt_ids,
                        chosen_ids,
                        rejected_ids,
                        fmt,
                        self.data_args.cutoff_len,
                        self.tokenizer.bos_token_id,
                    )
                except RowTooLong as err:
                    reason = f"too long: {sources[i]}: row {rows[i]}: {err}"
            for key in LAYOUT_COLUMNS:
                out[key].append(columns[key] if not reason else [])
            out[ROW_COLUMN].append(rows[i])
            out[SOURCE_COLUMN].append(sources[i])
            out[DROP_COLUMN].append(reason)
        return out

    def _pieces(self, examples: dict[str, list[Any]], i: int) -> tuple[list[int], list[int], list[int]]:
        """Prompt, chosen and rejected token ids, as LLaMA-Factory's DPO encodes them (before truncation)."""
        prompt, response = examples["_prompt"][i], examples["_response"][i]
        system, tools = examples["_system"][i], examples["_tools"][i]
        prompt_ids, chosen_ids = self.template.encode_oneturn(
            self.tokenizer, [*prompt, response[0]], system, tools
        )
        _, rejected_ids = self.template.encode_oneturn(self.tokenizer, [*prompt, response[1]], system, tools)
        if self.template.efficient_eos:
            chosen_ids = [*chosen_ids, self.tokenizer.eos_token_id]
            rejected_ids = [*rejected_ids, self.tokenizer.eos_token_id]
        return list(prompt_ids), list(chosen_ids), list(rejected_ids)

    @staticmethod
    def _aligned_verdict(examples: dict[str, list[Any]], i: int, source: str, row: int) -> str:
        """Checks of the aligned row (all formats): turn structure, answers, no media."""

        def problem(field: str, reason: str) -> str:
            return f"invalid: {InvalidPreferenceRow(source, row, field, reason)}"

        prompt, response = examples["_prompt"][i], examples["_response"][i]
        if len(prompt) % 2 != 1:
            return problem(
                "prompt", "malformed conversation (roles must alternate and end with the user's turn)"
            )
        if len(response) != 2:
            return problem("chosen", "a ranking row needs exactly one chosen and one rejected answer")
        for name, message in (("chosen", response[0]), ("rejected", response[1])):
            if not isinstance(message.get("content"), str) or not message["content"].strip():
                return problem(name, "empty")
        if response[0]["content"].strip() == response[1]["content"].strip():
            return problem("rejected", "identical to chosen (no preference to learn)")
        for media in ("_images", "_videos", "_audios"):
            if examples.get(media) and examples[media][i]:
                return problem(media.lstrip("_"), "multimodal rows are not supported by InSPO")
        return ""

    def print_data_example(self, example: dict[str, Any]) -> None:
        if example.get(DROP_COLUMN):
            print(f"first example (dropped): {example[DROP_COLUMN]}")
            return
        for name in ("a", "b"):
            ids = example[f"inspo_ids_{name}"]
            print(f"reflective sequence {name.upper()} ({len(ids)} tokens):")
            print(self.tokenizer.decode(ids, skip_special_tokens=False))


# -- dropping and reporting (wraps llamafactory.data.loader._get_preprocessed_dataset) -------------


def wrap_preprocessed_dataset(get_preprocessed: Callable[..., Any]) -> Callable[..., Any]:
    """``_get_preprocessed_dataset`` that drops the flagged rows into a report (or stops at an invalid one)."""

    def preprocessed(
        dataset: Any, data_args: Any, training_args: Any, stage: str, *args: Any, **kwargs: Any
    ) -> Any:
        out = get_preprocessed(dataset, data_args, training_args, stage, *args, **kwargs)
        if out is None or DROP_COLUMN not in (out.column_names or []):
            return out
        is_eval = kwargs.get("is_eval", args[3] if len(args) > 3 else False)
        return drop_flagged(out, "eval" if is_eval else "train", _options(), training_args)

    preprocessed.__wrapped__ = get_preprocessed  # type: ignore[attr-defined]
    return preprocessed


def drop_flagged(dataset: Any, name: str, options: InSPOOptions, training_args: Any) -> Any:
    """Drop the rows with a reason, report them, and fail on invalid rows when ``on_invalid_row: error``."""
    reasons: list[str] = dataset[DROP_COLUMN]
    rows: list[int] = dataset[ROW_COLUMN]
    report = DropReport(source=name, rows_in=len(reasons))
    flagged = [i for i, reason in enumerate(reasons) if reason]
    invalid = [i for i in flagged if reasons[i].startswith("invalid:")]
    if options.on_invalid_row == "error" and invalid:
        first = reasons[invalid[0]].removeprefix("invalid: ")
        raise ValueError(
            f"InSPO: {first} ({len(invalid)} invalid {name} rows in total; inspo.on_invalid_row: skip "
            "drops and reports them instead)"
        )
    for i in flagged:
        report.add(rows[i], reasons[i])
    main = getattr(training_args, "should_save", True)
    if report.dropped:
        if main:
            logger.warning("InSPO: %s", report.summary())
        output_dir = getattr(training_args, "output_dir", None)
        if output_dir and main:
            path = report.write(Path(output_dir) / f"inspo_dropped_rows_{name}.jsonl")
            logger.warning("InSPO: the full list of dropped %s rows is in %s", name, path)
        dataset = dataset.select(sorted(set(range(len(reasons))) - set(flagged)))
    elif main:
        logger.info("InSPO: %s", report.summary())
    if len(dataset) == 0:
        raise ValueError(f"InSPO: no {name} rows left: {report.summary()}")
    STATE.setdefault("reports", {})[name] = report
    return dataset
