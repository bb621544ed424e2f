"""``python -m inspo_plugin preview``: print the reflective sequences A and B of dataset rows.

Two sources:

- ``--config recipe.yml``: an Axolotl config. Rows go through Axolotl's own dataset loading (the
  configured strategy, its filters) and then the trainer's tokenisation and layout, so what is
  printed is exactly what training sees.
- ``--data rows.jsonl --tokenizer DIR``: a local JSON/JSONL file in any accepted shape.

With ``--context-gains --model DIR`` (and ``--data FILE`` or ``--builtin SPLIT``), it prints instead
the context gains of the rows under the model, log π(y | x, alternative) − log π(y | x) for both
answers, overall and by ``chosen_source``/``rejected_source``
(:mod:`inspo_plugin.evaluation.context_gain`): how much of the conditional terms training will see
is copying the alternative.
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
    src.add_argument("--builtin", choices=("train", "test"), help="a split of the shipped ifeval_prefs data")
    p.add_argument(
        "--variant",
        default=None,
        help="with --builtin: mixed (default), edited or natural (see the data card)",
    )
    p.add_argument(
        "--context-gains",
        action="store_true",
        help="report the rows' context gains under --model instead of printing sequences",
    )
    p.add_argument("--model", help="model directory (with --context-gains)")
    p.add_argument("--limit", type=int, default=None, help="with --context-gains: only the first N rows")
    p.add_argument("--batch-size", type=int, default=None, help="with --context-gains: rows per forward (8)")
    p.add_argument("--json", default=None, help="with --context-gains: also write the full report here")
    p.add_argument("--tokenizer", help="tokenizer directory (with --data)")
    p.add_argument("--rows", default=None, help="comma-separated row numbers to show (default 0,1)")
    p.add_argument("--template", default="revise", choices=TEMPLATES, help="how the alternative is shown")
    p.add_argument("--reflection-prompt", default=None, help="reflection message for --template custom")
    p.add_argument(
        "--max-length", type=int, default=None, help="bound on A and B (default: none / sequence_len)"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.variant is not None and not args.builtin:
        raise SystemExit("preview --variant applies to --builtin only")
    if args.context_gains:
        return run_context_gains(args)
    for flag in ("model", "limit", "json", "batch_size"):
        if getattr(args, flag) is not None:
            raise SystemExit(f"preview --{flag.replace('_', '-')} applies to --context-gains only")
    rows = [int(r) for r in (args.rows or "0,1").split(",") if r.strip()]
    if args.config:
        tokenizer, items, fmt, max_length = _from_axolotl(args.config, rows)
    else:
        if not args.tokenizer:
            raise SystemExit("preview --data needs --tokenizer DIR")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
        fmt = make_reflection_format(tokenizer, args.template, args.reflection_prompt)
        max_length = args.max_length
        items = _from_records(*_records(args), rows)
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


def run_context_gains(args: argparse.Namespace) -> int:
    """``--context-gains``: the report of :func:`~inspo_plugin.evaluation.context_gain.context_gains`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inspo_plugin.evaluation.context_gain import context_gains, format_report

    if args.config:
        raise SystemExit(
            "preview --context-gains reads --data FILE or --builtin SPLIT; for an Axolotl config, pass its "
            "dataset file with --data and its base model with --model"
        )
    if not args.model:
        raise SystemExit("preview --context-gains needs --model DIR")
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"preview --limit must be >= 1, got {args.limit}")
    if args.rows is not None:
        raise SystemExit("preview --rows selects sequences to print; with --context-gains use --limit")
    args.batch_size = 8 if args.batch_size is None else args.batch_size
    if args.batch_size < 1:
        raise SystemExit(f"preview --batch-size must be >= 1, got {args.batch_size}")
    records, source = _records(args)
    records = records[: args.limit] if args.limit else records
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer or args.model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32).eval()
    report = context_gains(
        model,
        tokenizer,
        records,
        template=args.template,
        batch_size=args.batch_size,
        max_length=args.max_length,
        reflection_prompt=args.reflection_prompt,
    )
    print(f"{source}: {len(records)} rows, model {args.model}, template {args.template}")
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"full report: {args.json}")
    return 0


def _records(args: argparse.Namespace) -> tuple[list[Any], str]:
    """The rows of ``--builtin`` (in ``--variant``) or ``--data``, and a name for them."""
    if args.builtin:
        from inspo_plugin.data import load_builtin_preferences

        variant = args.variant or "mixed"
        return load_builtin_preferences(
            args.builtin, variant=variant
        ), f"ifeval_prefs {args.builtin} ({variant})"
    return _read_records(Path(args.data)), args.data


def _read_records(path: Path) -> list[Any]:
    text = path.read_text()
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    records = json.loads(text)
    if not isinstance(records, list):
        raise SystemExit(f"{path}: expected a JSON list of rows")
    return records


def _from_records(records: list[Any], source: str, rows: list[int]) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for i in rows:
        if i >= len(records):
            raise SystemExit(f"{source}: row {i} does not exist ({len(records)} rows)")
        try:
            out.append((i, normalize_row(records[i], index=i, source=source, fields=RowFields())))
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
