"""Axolotl dataset strategy ``type: inspo_plugin.reflective``.

Accepts the common preference shapes (see :mod:`inspo_plugin.core.rows`), with column names from the
``inspo:`` block (``field_prompt``, ``field_chosen``, …; per-dataset keys are dropped by Axolotl's
schema for RL datasets). Each row keeps:

- ``prompt`` / ``chosen`` / ``rejected``: the chat-rendered strings, for Axolotl's length handling
  and for inspection;
- ``inspo_messages``: the normalised conversation as JSON; the trainer tokenises it with TRL's
  conversational path, so the template's turn structure is exact;
- ``inspo_row`` / ``inspo_source`` / ``inspo_drop_reason``: where the row came from and, for a row
  that cannot be trained on, why. Such rows are carried to the trainer, which drops, counts and
  reports them (``on_invalid_row: skip``); with ``on_invalid_row: error`` the first one stops the run.
"""

from __future__ import annotations

import json
from typing import Any

from inspo_plugin.axolotl.args import read_block
from inspo_plugin.axolotl.data_files import dataset_source
from inspo_plugin.core.layout import DROP_COLUMN, MESSAGES_COLUMN, ROW_COLUMN, SOURCE_COLUMN
from inspo_plugin.core.rawlines import RAW_ERROR_COLUMN, parse_raw_row, raw_row_error
from inspo_plugin.core.rows import InvalidPreferenceRow, normalize_row

_PLACEHOLDER = "[row dropped by InSPO]"


def _get(obj: Any, key: str, default: Any = None) -> Any:
    if obj is None:
        return default
    value = obj.get(key) if hasattr(obj, "get") else getattr(obj, key, None)
    return default if value is None else value


def load_reflective(cfg: Any, dataset_idx: int = 0, **_: Any) -> Any:
    """Return Axolotl's ``(transform_fn, map_kwargs)`` for one dataset of the config."""
    options, fields = read_block(_get(cfg, "inspo"))
    on_invalid = options.on_invalid_row
    sequence_len = _get(cfg, "sequence_len")
    datasets = _get(cfg, "datasets", []) or []
    path = _get(datasets[dataset_idx], "path", "") if dataset_idx < len(datasets) else ""
    source = dataset_source(path, "datasets", dataset_idx)  # the user's file, also behind a readable copy

    def transform_fn(sample: dict[str, Any], idx: int, tokenizer: Any = None) -> dict[str, Any]:
        out: dict[str, Any] = {ROW_COLUMN: idx, SOURCE_COLUMN: source, DROP_COLUMN: ""}
        try:
            if sample.get(RAW_ERROR_COLUMN):  # a line of the file that could not be read (data_files)
                raise raw_row_error(source, idx, sample[RAW_ERROR_COLUMN])
            row = normalize_row(parse_raw_row(sample), index=idx, source=source, fields=fields)
        except InvalidPreferenceRow as err:
            if on_invalid == "error":
                raise ValueError(
                    f"{err} (set inspo.on_invalid_row: skip to drop and report such rows)"
                ) from err
            return {**out, **_placeholders(), DROP_COLUMN: f"invalid: {err}"}
        rendered = _render(tokenizer, row) if tokenizer is not None else _plain(row)
        if tokenizer is not None and sequence_len:
            prompt_len = len(tokenizer(rendered["prompt"], add_special_tokens=False)["input_ids"])
            if prompt_len >= sequence_len:
                reason = f"too long: prompt ({prompt_len} tokens) reaches sequence_len={sequence_len}"
                return {**out, **_placeholders(), DROP_COLUMN: reason}
        return {**out, **rendered, MESSAGES_COLUMN: json.dumps(row)}

    return transform_fn, {"with_indices": True}


def _placeholders() -> dict[str, str]:
    # Non-empty strings keep Axolotl's own filters from dropping the row before it is reported.
    return {"prompt": _PLACEHOLDER, "chosen": _PLACEHOLDER, "rejected": _PLACEHOLDER, MESSAGES_COLUMN: ""}


def _render(tokenizer: Any, row: dict[str, Any]) -> dict[str, str]:
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    out = {"prompt": prompt}
    eos = tokenizer.eos_token or ""
    for key in ("chosen", "rejected"):
        full = tokenizer.apply_chat_template(row["prompt"] + row[key], tokenize=False)
        completion = full[len(prompt) :] if full.startswith(prompt) else row[key][0]["content"]
        # End at the EOS when the turn end starts with it ("answer<|im_end|>\n" → "answer<|im_end|>"):
        # TRL appends an EOS to string completions that do not end with one, which would double it
        # for trainers that read these strings (rl: dpo, simpo). The InSPO trainer reads the messages.
        if eos and completion.rstrip().endswith(eos):
            completion = completion.rstrip()
        out[key] = completion
    return out


def _plain(row: dict[str, Any]) -> dict[str, str]:
    return {
        "prompt": row["prompt"][-1]["content"],
        "chosen": row["chosen"][0]["content"],
        "rejected": row["rejected"][0]["content"],
    }
