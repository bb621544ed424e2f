"""DPO vs InSPO (and SimPO vs InSPO-SimPO) on SmolLM2-135M-Instruct, CPU, same everything else.

Every run starts from the same base checkpoint and uses the demo recipe's data, steps, learning
rate, batch and seed; only the objective changes:

- ``dpo``: ``rl: dpo`` — Axolotl's own DPO trainer (TRL), what users run today;
- ``inspo``: ``rl: inspo``, ``loss_type: sigmoid`` (InSPO-DPO);
- ``simpo``: ``rl: simpo`` — Axolotl's SimPO (TRL's CPO trainer, ``cpo_alpha: 0``: pure SimPO);
- ``inspo-simpo``: ``rl: inspo``, ``loss_type: simpo`` with the same β and γ;
- ablations: ``inspo-concat`` (template), ``inspo-uncond`` (``uncond_weight: 1``), ``inspo-beta05``.

Each trained checkpoint is evaluated against the base model on the held-out split (preference
accuracy and margins; greedy generations scored by the verifiable checkers) with bootstrap 95% CIs,
and the wall time of training is recorded. Run from the repository root::

    python bench/compare.py                          # dpo, inspo, simpo, inspo-simpo
    python bench/compare.py --runs inspo-concat inspo-uncond --steps 40
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import time
from pathlib import Path
from typing import Any

import yaml

from inspo_plugin.axolotl.launch import progress_printer, run_axolotl
from inspo_plugin.data import load_preference_rows
from inspo_plugin.evaluation.report import evaluate_checkpoint, markdown_table, write_report
from inspo_plugin.models.smollm2 import DEMO_MODEL_DIR as MODEL_DIR
from inspo_plugin.models.smollm2 import DEMO_RECIPE as RECIPE
from inspo_plugin.models.smollm2 import materialize_smollm2
from inspo_plugin.offline import apply_offline_defaults

SIMPO = {"rl_beta": 2.0, "simpo_gamma": 1.0}  # SimPO's usual β, γ (γ/β = 0.5)
RUNS: dict[str, dict[str, Any]] = {
    "dpo": {"rl": "dpo", "inspo": None},
    "inspo": {"rl": "inspo", "inspo": {"loss_type": "sigmoid"}},
    "simpo": {"rl": "simpo", "inspo": None, "cpo_alpha": 0.0, **SIMPO},
    "inspo-simpo": {"rl": "inspo", "inspo": {"loss_type": "simpo", "simpo_gamma": 1.0}, "rl_beta": 2.0},
    "inspo-concat": {"rl": "inspo", "inspo": {"loss_type": "sigmoid", "template": "concat"}},
    "inspo-uncond": {"rl": "inspo", "inspo": {"loss_type": "sigmoid", "uncond_weight": 1.0}},
    "inspo-beta05": {"rl": "inspo", "inspo": {"loss_type": "sigmoid"}, "rl_beta": 0.5},
}
LABELS = {
    "dpo": "DPO (rl: dpo)",
    "inspo": "InSPO-DPO (rl: inspo)",
    "simpo": "SimPO (rl: simpo)",
    "inspo-simpo": "InSPO-SimPO",
    "inspo-concat": "InSPO-DPO, template concat",
    "inspo-uncond": "InSPO-DPO, uncond_weight 1",
    "inspo-beta05": "InSPO-DPO, β 0.5",
}


def run_config(name: str, steps: int, out_root: Path) -> Path:
    cfg = yaml.safe_load(RECIPE.read_text())
    overrides = copy.deepcopy(RUNS[name])
    block = overrides.pop("inspo")
    cfg.update(overrides)
    if block is None:
        cfg.pop("inspo", None)
    else:
        cfg["inspo"] = {**(cfg.get("inspo") or {}), **block}
    cfg.update(
        max_steps=steps,
        output_dir=str(out_root / name),
        dataset_prepared_path=str(out_root / "prepared" / name),
        val_set_size=0,  # evaluation happens afterwards, on the held-out split, the same for every run
        save_steps=steps,
    )
    cfg.pop("eval_strategy", None)
    cfg.pop("eval_steps", None)
    # Axolotl's SimPO path rejects warmup_ratio; the same schedule as whole steps, for every run.
    if "warmup_ratio" in cfg:
        cfg["warmup_steps"] = math.ceil(cfg.pop("warmup_ratio") * steps)
    path = out_root / f"{name}.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def train(config: Path, log_path: Path) -> float:
    """``axolotl train config`` (one process), progress lines shown, full log in ``log_path``."""
    result = run_axolotl("train", config, log_path=log_path, on_line=progress_printer())
    if not result.ok:
        raise SystemExit(f"axolotl train failed (exit {result.returncode}); the full log is {log_path}")
    return result.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--runs", nargs="+", default=["dpo", "inspo", "simpo", "inspo-simpo"], choices=list(RUNS)
    )
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    parser.add_argument(
        "--generate", type=int, default=None, help="held-out prompts to answer (default: all)"
    )
    parser.add_argument("--pairs", type=int, default=40, help="held-out pairs to score (0: all)")
    parser.add_argument("--output", default="bench/results/compare")
    args = parser.parse_args()

    apply_offline_defaults()
    out_root = Path("outputs/bench")
    out_root.mkdir(parents=True, exist_ok=True)
    report_dir = Path(args.output)
    materialize_smollm2(MODEL_DIR)
    steps = args.steps or int(yaml.safe_load(RECIPE.read_text())["max_steps"])
    rows = load_preference_rows()
    generate = args.generate or len(rows)
    pairs = args.pairs or len(rows)
    reference_logps = None

    results: dict[str, Any] = {}
    cache = report_dir / "base.json"
    if cache.is_file():
        results["base"] = json.loads(cache.read_text())
    else:
        print("[bench] evaluating the base model")
        results["base"] = evaluate_checkpoint(MODEL_DIR, MODEL_DIR, rows, generate=generate)
        report_dir.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(results["base"]))
    # Runs finished by earlier invocations (same steps) stay in the table.
    for name in RUNS:
        saved = report_dir / f"{name}.json"
        if name not in args.runs and saved.is_file():
            results[name] = json.loads(saved.read_text())
            reference_logps = reference_logps or results[name].get("preference", {}).get("reference_logps")
    for name in args.runs:
        print(f"\n[bench] {name}: training {steps} steps")
        config = run_config(name, steps, out_root)
        seconds = train(config, out_root / f"{name}.log")
        started = time.monotonic()
        result = evaluate_checkpoint(
            out_root / name,
            MODEL_DIR,
            rows,
            generate=generate,
            max_pairs=pairs,
            reference_responses=results["base"]["reference_responses"],
            reference_logps=reference_logps,
        )
        reference_logps = result["preference"]["reference_logps"]
        result["train_seconds"] = seconds
        result["eval_seconds"] = time.monotonic() - started
        result["config"] = str(config)
        results[name] = result
        (report_dir / f"{name}.json").write_text(json.dumps(result, default=str))
        print(markdown_table({LABELS.get(k, k): v for k, v in results.items()}))

    named = {
        ("SmolLM2-135M-Instruct (base)" if k == "base" else LABELS.get(k, k)): v for k, v in results.items()
    }
    paths = write_report(named, report_dir, title=f"SmolLM2-135M-Instruct, {steps} steps, CPU")
    states = {name: sorted((out_root / name).glob("checkpoint-*/trainer_state.json")) for name in args.runs}
    inspo_states = [s[-1] for name, s in states.items() if s and name.startswith("inspo")]
    if inspo_states:
        from inspo_plugin.evaluation.plots import plot_training_curves

        plot_training_curves(inspo_states, report_dir / "curves.png")
    print(f"\n{markdown_table(named)}\n\n[bench] wrote {paths['markdown']}")


if __name__ == "__main__":
    main()
