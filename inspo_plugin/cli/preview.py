"""``python -m inspo_plugin preview``: print the reflective sequences A and B of dataset rows.

Two sources:

- ``--config recipe.yml``: an Axolotl config. Rows go through Axolotl's own dataset loading (the
  configured strategy, its filters) and then the trainer's tokenisation and layout, so what is
  printed is exactly what training sees.
- ``--data rows.jsonl --tokenizer DIR``: a local JSON/JSONL file in any accepted shape.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inspo_plugin.core.layout import DROP_COLUMN, MESSAGES_COLUMN, ROW_COLUMN, reflective_pair
from inspo_plugin.core.rows import InvalidPreferenceRow, RowFields, normalize_row
from inspo_plugin.core.sequences import (
    TEMPLATES,
    ReflectivePair,
    RowTooLong,
    make_reflection_format,
    render_preview,
    tokenize_preference_row,
)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("preview", help="show the reflective sequences A and B that training will see")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="an Axolotl YAML using rl: inspo")
    src.add_argument("--data", help="a local .json/.jsonl preference file")
    p.add_argument("--tokenizer", help="tokenizer directory (with --data)")
    p.add_argument("--rows", default="0,1", help="comma-separated row numbers to show (default 0,1)")
    p.add_argument("--template", default="revise", choices=TEMPLATES, help="how the alternative is shown")
    p.add_argument("--reflection-prompt", default=None, help="reflection message for --template custom")
    p.add_argument(
        "--max-length", type=int, default=None, help="bound on A and B (default: none / sequence_len)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    rows = [int(r) for r in args.rows.split(",") if r.strip()]
    if args.config:
        tokenizer, items, fmt, max_length = _from_axolotl(args.config, rows)
    else:
        if not args.tokenizer:
            raise SystemExit("preview --data needs --tokenizer DIR")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        fmt = make_reflection_format(tokenizer, args.template, args.reflection_prompt)
        max_length = args.max_length
        items = _from_file(Path(args.data), rows)
    print(f"template: {fmt.template}   bridge after an answer: {fmt.text!r}\n")
    for index, row in items:
        if isinstance(row, str):
            print(f"── row {index}: {row}\n")
            continue
        t = tokenize_preference_row(tokenizer, row)
        try:
            pair: ReflectivePair = reflective_pair(
                t["prompt_ids"], t["chosen_ids"], t["rejected_ids"], fmt, max_length, tokenizer.bos_token_id
            )
        except RowTooLong as err:
            print(f"── row {index}: dropped, too long: {err}\n")
            continue
        print(render_preview(tokenizer, pair, title=f"row {index}"))
    return 0


def _from_file(path: Path, rows: list[int]) -> list[tuple[int, Any]]:
    text = path.read_text()
    records = (
        [json.loads(line) for line in text.splitlines() if line.strip()]
        if path.suffix == ".jsonl"
        else json.loads(text)
    )
    out: list[tuple[int, Any]] = []
    for i in rows:
        if i >= len(records):
            raise SystemExit(f"{path}: row {i} does not exist ({len(records)} rows)")
        try:
            out.append((i, normalize_row(records[i], index=i, source=str(path), fields=RowFields())))
        except InvalidPreferenceRow as err:
            out.append((i, f"invalid: {err}"))
    return out


def _from_axolotl(config: str, rows: list[int]) -> tuple[Any, list[tuple[int, Any]], Any, int | None]:
    from axolotl.cli.config import load_cfg
    from axolotl.common.datasets import load_preference_datasets
    from axolotl.loaders import load_tokenizer

    from inspo_plugin.axolotl.args import read_block

    cfg = load_cfg(config)
    if not cfg.get("inspo_enabled"):
        raise SystemExit(
            f"{config}: not an InSPO config (needs rl: inspo and plugins: [inspo_plugin.InSPOPlugin])"
        )
    options, _ = read_block(cfg.get("inspo"))
    tokenizer = load_tokenizer(cfg)
    from axolotl.cli.args import PreprocessCliArgs

    meta = load_preference_datasets(cfg=cfg, cli_args=PreprocessCliArgs())
    dataset = meta.train_dataset
    fmt = make_reflection_format(tokenizer, options.template, options.reflection_prompt)
    items: list[tuple[int, Any]] = []
    for i in rows:
        if i >= len(dataset):
            raise SystemExit(
                f"{config}: the prepared training set has {len(dataset)} rows; row {i} does not exist"
            )
        record = dataset[i]
        label = record.get(ROW_COLUMN, i)
        if record.get(DROP_COLUMN):
            items.append((label, record[DROP_COLUMN]))
        elif record.get(MESSAGES_COLUMN):
            items.append((label, json.loads(record[MESSAGES_COLUMN])))
        else:
            items.append((label, {k: record[k] for k in ("prompt", "chosen", "rejected")}))
    return tokenizer, items, fmt, cfg.get("sequence_len")
