"""``python -m inspo_plugin eval``: evaluate a checkpoint against its reference.

Writes ``results.json``, ``results.md`` and, given trainer logs, ``curves.png`` to ``--output-dir``::

    python -m inspo_plugin eval --model outputs/smollm2-demo --reference outputs/smollm2-135m-instruct \\
        --generate 64 --trainer-state outputs/smollm2-demo/checkpoint-30/trainer_state.json
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from inspo_plugin.core.sequences import TEMPLATES


def add_parser(sub: Any) -> None:
    p = sub.add_parser("eval", help="preference accuracy, generation win rate, judge, plots")
    p.add_argument("--model", required=True, help="checkpoint to evaluate (full model or adapter)")
    p.add_argument("--reference", required=True, help="reference checkpoint (usually the starting model)")
    p.add_argument("--data", default=None, help="held-out .jsonl (default: the shipped test split)")
    p.add_argument("--limit", type=int, default=None, help="use only the first N rows")
    p.add_argument("--template", default="revise", choices=TEMPLATES, help="how the alternative is shown")
    p.add_argument("--reflection-prompt", default=None, help="reflection message for --template custom")
    p.add_argument("--generate", type=int, default=64, help="held-out prompts to answer (0: skip generation)")
    p.add_argument("--max-new-tokens", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--judge-base-url", default=None, help="OpenAI-compatible endpoint for a pairwise judge")
    p.add_argument("--judge-model", default=None, help="judge model name at that endpoint")
    p.add_argument("--trainer-state", nargs="*", default=[], help="trainer_state.json file(s) to plot")
    p.add_argument("--output-dir", default="outputs/eval")
    p.add_argument("--name", default=None, help="row name in the table (default: the model directory)")
    p.set_defaults(func=run)


def make_judge(base_url: str | None, model: str | None) -> Any:
    if not base_url:
        return None
    if not model:
        raise SystemExit("--judge-base-url needs --judge-model")
    from inspo_plugin.evaluation.judge import PairwiseJudge

    return PairwiseJudge(base_url=base_url, model=model, api_key=os.environ.get("INSPO_JUDGE_API_KEY"))


def run(args: argparse.Namespace) -> int:
    from inspo_plugin.data import load_preference_rows
    from inspo_plugin.evaluation.report import evaluate_checkpoint, markdown_table, write_report

    rows = load_preference_rows(args.data, args.limit)
    name = args.name or Path(args.model).name
    print(f"[eval] {name}: {len(rows)} held-out rows, reference {args.reference}")
    result = evaluate_checkpoint(
        args.model,
        args.reference,
        rows,
        template=args.template,
        reflection_prompt=args.reflection_prompt,
        generate=args.generate,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        judge=make_judge(args.judge_base_url, args.judge_model),
    )
    paths = write_report({name: result}, args.output_dir, title=f"Evaluation of {name}")
    if args.trainer_state:
        from inspo_plugin.evaluation.plots import plot_training_curves

        png = plot_training_curves(args.trainer_state, Path(args.output_dir) / "curves.png")
        print(f"[eval] training curves: {png}")
    print(markdown_table({name: result}))
    print(f"[eval] wrote {paths['json']} and {paths['markdown']}")
    return 0
