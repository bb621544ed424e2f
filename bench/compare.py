"""DPO vs InSPO (and ablations) on SmolLM2-135M-Instruct, same everything else, over several seeds.

Every run starts from the same base checkpoint and uses the demo recipe's data, learning rate,
batch and schedule; only the objective (and, across seeds, the recipe's ``seed``: data order and
initialisation of sampling) changes:

- ``dpo``: ``rl: dpo`` — DPO as users run it today (Axolotl's / TRL's DPO trainer);
- ``inspo``: ``rl: inspo``, ``loss_type: sigmoid`` (InSPO-DPO) with the recipe's options but
  ``uncond_weight: 0`` (the paper's objective; the demo recipe sets 1);
- ``inspo-uncond``: ``uncond_weight: 1``; ``inspo-concat`` / ``inspo-revise``: the template;
- ``inspo-beta0.05`` / ``inspo-beta0.1`` / ``inspo-beta0.3`` (and ``inspo-beta0.5``): β of InSPO-DPO;
  ``dpo-beta0.05`` and ``inspo-uncond-beta0.05``: β 0.05 for DPO and for ``inspo-uncond``;
- ``simpo`` (Axolotl's ``rl: simpo``, ``cpo_alpha: 0``) and ``inspo-simpo`` with the same β, γ.

A run whose training config equals one already trained with the same seed (with the demo recipe,
``inspo-revise`` and ``inspo-beta0.1`` are ``inspo``) is not trained again: its result is copied.

Each checkpoint is evaluated against the base model on the held-out split — all shipped test rows,
whatever data variant the study trains on (greedy answers checked
by the verifiable constraints; preference accuracy and margins). The table reports, per run, the
mean over seeds and the paired bootstrap 95% CI of the difference to DPO, paired by (held-out
prompt, seed) (:func:`inspo_plugin.evaluation.stats.paired_seed_difference`), for the ``inspo-*``
variants also to plain InSPO-DPO, and of the pass rate's difference to the base model. Run from the repository root::

    python bench/compare.py --runs dpo inspo --seeds 3 --epochs 1 --data mixed
    python bench/compare.py --runs dpo inspo --steps 8            # a quick check
    python bench/compare.py --engine trl ...                       # plain TRL (a GPU without axolotl)
    python bench/compare.py --contrast natural mixed --epochs 1    # two saved studies, run by run

Everything of one study (data variant, training length, engine) lives in ``OUTPUT/STUDY/``
(``STUDY`` e.g. ``mixed-epochs1-axolotl``): one JSON per (run, seed) under ``runs/``, written as soon
as that run is evaluated and reused by later invocations (delete it to train again), so a long
sweep can be built over several invocations; ``results.md`` / ``results.json`` (the table over all
saved runs of the study) and ``curves.png`` (the training curves of every run in the table).
``--contrast`` trains nothing: it compares two saved studies that differ only in their training data
(:func:`study_contrast`: each run's change from one data variant to the other, and that change minus
DPO's) into ``OUTPUT/contrast-FIRST-SECOND-LENGTH-ENGINE.{md,json}``.
A run that is interrupted (the machine goes away, Ctrl-C) resumes from its newest checkpoint, saved
every ``CHECKPOINT_EVERY`` steps, when the same command is run again.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from inspo_plugin.evaluation.generation import SHORT_ANSWER_WORDS, is_short_answer
from inspo_plugin.evaluation.plots import latest_checkpoint
from inspo_plugin.models.smollm2 import DEMO_MODEL_DIR as MODEL_DIR
from inspo_plugin.models.smollm2 import DEMO_RECIPE as RECIPE

SIMPO = {"rl_beta": 2.0, "simpo_gamma": 1.0}  # SimPO's usual β, γ (γ/β = 0.5)
# the paper's InSPO-DPO: uncond_weight pinned to 0, whatever the demo recipe (the base config) sets
DPO_INSPO = {"loss_type": "sigmoid", "uncond_weight": 0.0}
RUNS: dict[str, dict[str, Any]] = {
    "dpo": {"rl": "dpo", "inspo": None},
    "inspo": {"rl": "inspo", "inspo": DPO_INSPO},
    "inspo-uncond": {"rl": "inspo", "inspo": {**DPO_INSPO, "uncond_weight": 1.0}},
    "inspo-concat": {"rl": "inspo", "inspo": {**DPO_INSPO, "template": "concat"}},
    "inspo-revise": {"rl": "inspo", "inspo": {**DPO_INSPO, "template": "revise"}},
    "inspo-beta0.05": {"rl": "inspo", "inspo": DPO_INSPO, "rl_beta": 0.05},
    "inspo-beta0.1": {"rl": "inspo", "inspo": DPO_INSPO, "rl_beta": 0.1},
    "inspo-beta0.3": {"rl": "inspo", "inspo": DPO_INSPO, "rl_beta": 0.3},
    "inspo-beta0.5": {"rl": "inspo", "inspo": DPO_INSPO, "rl_beta": 0.5},
    # β 0.05 for DPO too (is a smaller β InSPO-specific?) and with the prompt-only loss
    "dpo-beta0.05": {"rl": "dpo", "inspo": None, "rl_beta": 0.05},
    "inspo-uncond-beta0.05": {"rl": "inspo", "inspo": {**DPO_INSPO, "uncond_weight": 1.0}, "rl_beta": 0.05},
    "simpo": {"rl": "simpo", "inspo": None, "cpo_alpha": 0.0, **SIMPO},
    "inspo-simpo": {
        "rl": "inspo",
        "inspo": {"loss_type": "simpo", "simpo_gamma": 1.0, "uncond_weight": 0.0},
        "rl_beta": 2.0,
    },
}
DEFAULT_RUNS = ["dpo", "inspo", "inspo-uncond", "inspo-concat", "inspo-beta0.05", "inspo-beta0.3"]
LABELS = {
    "dpo": "DPO (rl: dpo)",
    "inspo": "InSPO-DPO (rl: inspo)",
    "inspo-uncond": "InSPO-DPO, uncond_weight 1",
    "inspo-concat": "InSPO-DPO, template concat",
    "inspo-revise": "InSPO-DPO, template revise",
    "dpo-beta0.05": "DPO, β 0.05",
    "inspo-uncond-beta0.05": "InSPO-DPO, uncond_weight 1, β 0.05",
    "simpo": "SimPO (rl: simpo)",
    "inspo-simpo": "InSPO-SimPO",
}
# Optimizer steps between a run's full checkpoints (weights, optimizer, scheduler, RNG states): an
# interrupted run loses at most this many steps (20 steps: 7–10 min of a CPU run, ~10 s to save).
CHECKPOINT_EVERY = 20
# Written into a run's output directory: the fingerprint of the config its checkpoints belong to.
FINGERPRINT_FILE = "bench_fingerprint.txt"
DATA_VARIANTS = ("mixed", "natural", "edited")
ENGINES = ("axolotl", "trl")
BASE_LABEL = "SmolLM2-135M-Instruct (base)"


def label(run: str) -> str:
    if run in LABELS:
        return LABELS[run]
    if run.startswith("inspo-beta"):
        return f"InSPO-DPO, β {run.removeprefix('inspo-beta')}"
    return run


# --- data --------------------------------------------------------------------------------------


def load_variant(split: str, data: str) -> list[dict[str, Any]]:
    """The shipped preference rows of one split in data variant ``data``
    (``inspo_plugin.data.load_builtin_preferences(split, variant=data)``); an unknown or unbuilt
    variant is an error naming it (and, for an unbuilt one, the command that builds it)."""
    if data not in DATA_VARIANTS:
        raise SystemExit(f"--data {data}: unknown data variant; choose one of {', '.join(DATA_VARIANTS)}")
    from inspo_plugin.data import load_builtin_preferences

    try:
        return load_builtin_preferences(split, variant=data)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(
            f"--data {data}: the {split} split of this variant is unavailable: {error}"
        ) from error


def write_train_file(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """The training rows as a ``.jsonl`` file, the ``path:`` the study's configs train on."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(dict(row), ensure_ascii=False) + "\n" for row in rows)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


# --- configs -----------------------------------------------------------------------------------


def budget_name(steps: int | None, epochs: int | None) -> str:
    """``steps32`` or ``epochs1``: the training length part of a study's name."""
    if (steps is None) == (epochs is None):
        raise ValueError("give exactly one of steps and epochs")
    if steps is not None:
        if steps < 1:
            raise ValueError(f"--steps must be positive, got {steps}")
        return f"steps{steps}"
    assert epochs is not None
    if epochs <= 0:
        raise ValueError(f"--epochs must be positive, got {epochs}")
    return f"epochs{epochs}"


def study_name(data: str, steps: int | None, epochs: int | None, engine: str) -> str:
    return f"{data}-{budget_name(steps, epochs)}-{engine}"


def seeds_for(recipe_seed: int, n: int) -> list[int]:
    """``n`` training seeds: the recipe's, then the next ones."""
    if n < 1:
        raise ValueError(f"--seeds must be at least 1, got {n}")
    return [recipe_seed + k for k in range(n)]


def run_config(
    recipe: Mapping[str, Any],
    name: str,
    *,
    seed: int,
    train_file: Path,
    n_train_rows: int,
    out_dir: Path,
    prepared_dir: Path,
    steps: int | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """The training config of run ``name`` with ``seed``: the recipe with the run's overrides, trained
    on ``train_file`` for ``steps`` optimizer steps or ``epochs`` whole epochs (pure; nothing written)."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}; available: {', '.join(RUNS)}")
    budget_name(steps, epochs)
    cfg = copy.deepcopy(dict(recipe))
    overrides = copy.deepcopy(RUNS[name])
    block = overrides.pop("inspo")
    cfg.update(overrides)
    if block is None:
        cfg.pop("inspo", None)
    else:
        cfg["inspo"] = {**(cfg.get("inspo") or {}), **block}
    datasets = cfg.get("datasets") or []
    if len(datasets) != 1:
        raise ValueError(f"the recipe must train on one dataset, it lists {len(datasets)}")
    cfg["datasets"] = [{**datasets[0], "path": str(train_file), "split": "train"}]
    pairs_per_step = int(cfg["micro_batch_size"]) * int(cfg.get("gradient_accumulation_steps") or 1)
    if steps is not None:
        total = steps
        cfg["max_steps"] = steps
        cfg.pop("num_epochs", None)
        cfg.update(save_strategy="steps", save_steps=steps)
    else:
        assert epochs is not None
        total = math.ceil(epochs * math.ceil(n_train_rows / pairs_per_step))
        cfg.pop("max_steps", None)
        cfg["num_epochs"] = epochs
        cfg["save_strategy"] = "epoch"
        cfg.pop("save_steps", None)
    cfg.update(
        seed=seed,
        output_dir=str(out_dir),
        dataset_prepared_path=str(prepared_dir),
        val_set_size=0,  # evaluation happens afterwards, on the held-out split, the same for every run
    )
    cfg.pop("eval_strategy", None)
    cfg.pop("eval_steps", None)
    # Axolotl's SimPO path rejects warmup_ratio; the same schedule as whole steps, for every run.
    if "warmup_ratio" in cfg:
        cfg["warmup_steps"] = math.ceil(cfg.pop("warmup_ratio") * total)
    return cfg


def fingerprint(cfg: Mapping[str, Any]) -> str:
    """A hash of what a config trains (its output locations left out): equal configs, equal runs."""
    trained = {k: v for k, v in cfg.items() if k not in ("output_dir", "dataset_prepared_path")}
    return hashlib.sha256(json.dumps(trained, sort_keys=True, default=str).encode()).hexdigest()[:16]


def resume_point(run_dir: Path, key: str) -> Path | None:
    """The newest checkpoint in ``run_dir`` of an interrupted earlier attempt at the config whose
    fingerprint is ``key``, or ``None`` (a fresh start).

    ``run_dir`` is left holding the checkpoints of that config only: a directory written for another
    config (another recipe, code or budget) is emptied, and ``key`` is recorded there for next time.
    """
    marker = run_dir / FINGERPRINT_FILE
    if run_dir.exists() and (not marker.is_file() or marker.read_text().strip() != key):
        print(f"[bench] {run_dir}: left from another config; starting afresh")
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    marker.write_text(key + "\n")
    return latest_checkpoint(run_dir)


def checkpointed(
    cfg: Mapping[str, Any], resume_from: Path | None, every: int = CHECKPOINT_EVERY
) -> dict[str, Any]:
    """``cfg`` as the study trains it (pure): a full checkpoint every ``every`` steps and at the end,
    only the newest kept, and ``resume_from_checkpoint`` when there is one to resume from.

    Applied after :func:`fingerprint`: where a run is checkpointed does not change what it trains —
    a resumed run equals the uninterrupted one exactly, with Axolotl and with TRL (tests/test_resume.py).
    """
    out = {**cfg, "save_strategy": "steps", "save_steps": every, "save_total_limit": 1}
    out["save_only_model"] = False  # the optimizer and RNG states are what make a resume exact
    if resume_from is not None:
        out["resume_from_checkpoint"] = str(resume_from)
    return out


# --- engines -----------------------------------------------------------------------------------


def default_engine() -> str:
    return "axolotl" if importlib.util.find_spec("axolotl") is not None else "trl"


def train_axolotl(config: Path, log_path: Path) -> float:
    """``axolotl train config`` (one process), progress lines shown, full log in ``log_path``."""
    from inspo_plugin.axolotl.launch import progress_printer, run_axolotl

    result = run_axolotl("train", config, log_path=log_path, on_line=progress_printer())
    if not result.ok:
        raise RuntimeError(f"axolotl train failed (exit {result.returncode}); the full log is {log_path}")
    return result.seconds


# recipe key -> the TrainingArguments / DPOConfig field of the same meaning
TRL_FIELDS = {
    "micro_batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "learning_rate": "learning_rate",
    "max_steps": "max_steps",
    "num_epochs": "num_train_epochs",
    "warmup_steps": "warmup_steps",
    "optimizer": "optim",
    "adam_beta1": "adam_beta1",
    "adam_beta2": "adam_beta2",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "gradient_checkpointing": "gradient_checkpointing",
    "logging_steps": "logging_steps",
    "save_strategy": "save_strategy",
    "save_steps": "save_steps",
    "save_only_model": "save_only_model",
    "save_total_limit": "save_total_limit",
    "seed": "seed",
    "rl_beta": "beta",
    "sequence_len": "max_length",
    "dataset_num_proc": "dataset_num_proc",
}
# recipe keys the trl engine reads itself (and checks); dataset_prepared_path is Axolotl's cache
# location, with nothing to cache here
TRL_HANDLED = {
    "base_model",
    "plugins",
    "rl",
    "inspo",
    "chat_template",
    "datasets",
    "dataset_prepared_path",
    "val_set_size",
    "sample_packing",
    "lr_scheduler",
    "cosine_min_lr_ratio",
    "bf16",
    "fp16",
    "tf32",
    "attn_implementation",
    "output_dir",
    "save_safetensors",
    "resume_from_checkpoint",
}


def trl_arguments(cfg: Mapping[str, Any], *, cuda: bool) -> tuple[str, dict[str, Any]]:
    """``(rl, keyword arguments of DPOConfig / InSPOConfig)`` for a recipe-style config (pure).

    Every key is mapped (:data:`TRL_FIELDS`), read by the engine (:data:`TRL_HANDLED`) or refused:
    an unknown key, or a value the engine cannot honour, is a ``ValueError`` naming it. On a GPU
    (``cuda``) the run trains in bf16 mixed precision whatever the recipe's CPU precision says.
    """
    rl = cfg.get("rl")
    if rl not in ("dpo", "inspo"):
        raise ValueError(f"rl: {rl}: --engine trl trains rl: dpo and rl: inspo runs; use --engine axolotl")
    unknown = sorted(set(cfg) - set(TRL_FIELDS) - TRL_HANDLED)
    if unknown:
        raise ValueError(f"--engine trl does not know the recipe option(s) {unknown}; use --engine axolotl")
    plugins = cfg.get("plugins") or []
    if any(p != "inspo_plugin.InSPOPlugin" for p in plugins):
        raise ValueError(f"plugins: {plugins}: --engine trl knows only inspo_plugin.InSPOPlugin")
    for key, allowed in (("val_set_size", (0, 0.0, None)), ("sample_packing", (False, None))):
        if cfg.get(key) not in allowed:
            raise ValueError(f"{key}: {cfg[key]!r} is not supported by --engine trl (allowed: {allowed})")
    if cfg.get("fp16") or cfg.get("tf32"):
        raise ValueError("fp16 / tf32: --engine trl trains in fp32 on CPU and bf16 on GPU")
    if cfg.get("save_safetensors") is False:
        raise ValueError("save_safetensors: false is not supported (transformers saves safetensors)")
    if cfg.get("chat_template") not in ("chatml", "tokenizer_default", None):
        raise ValueError(
            f"chat_template: {cfg['chat_template']!r}: --engine trl knows chatml and tokenizer_default"
        )
    datasets = cfg.get("datasets") or []
    if len(datasets) != 1 or datasets[0].get("type") != "inspo_plugin.reflective":
        raise ValueError("datasets: --engine trl trains on one dataset of type inspo_plugin.reflective")
    extra = sorted(set(datasets[0]) - {"path", "split", "type"})
    if extra:
        raise ValueError(f"datasets[0]: --engine trl does not know {extra}")
    args: dict[str, Any] = {TRL_FIELDS[k]: v for k, v in cfg.items() if k in TRL_FIELDS and v is not None}
    scheduler = cfg.get("lr_scheduler") or "linear"
    if cfg.get("cosine_min_lr_ratio") is not None:
        if scheduler != "cosine":
            raise ValueError("cosine_min_lr_ratio needs lr_scheduler: cosine")
        # Axolotl's cosine with a floor: lr · (r + (1 − r) · ½(1 + cos πt)), transformers' cosine_with_min_lr
        args["lr_scheduler_type"] = "cosine_with_min_lr"
        args["lr_scheduler_kwargs"] = {"min_lr_rate": float(cfg["cosine_min_lr_ratio"])}
    else:
        args["lr_scheduler_type"] = scheduler
    args.update(output_dir=str(cfg["output_dir"]), report_to=[], bf16=cuda, use_cpu=not cuda)
    if rl == "inspo":
        args.update(cfg.get("inspo") or {})
    return rl, args


def train_trl(cfg: Mapping[str, Any], log_path: Path) -> float:
    """Train a recipe-style config with plain TRL: ``trl.DPOTrainer`` (``rl: dpo``) or
    :class:`~inspo_plugin.InSPOTrainer` (``rl: inspo``) on its dataset, on CUDA when available.

    The final model, tokenizer and ``trainer_state.json`` are written to ``output_dir``.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inspo_plugin.core.rows import normalize_row
    from inspo_plugin.data import load_preference_rows
    from inspo_plugin.models.tiny import CHATML_TEMPLATE

    cuda = torch.cuda.is_available()
    rl, args = trl_arguments(cfg, cuda=cuda)
    source = str(cfg["datasets"][0]["path"])
    rows = [normalize_row(row, index=i, source=source) for i, row in enumerate(load_preference_rows(source))]
    tokenizer = AutoTokenizer.from_pretrained(cfg["base_model"])
    if cfg.get("chat_template") == "chatml":
        tokenizer.chat_template = CHATML_TEMPLATE  # the same text as Axolotl's chatml template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    attn = cfg.get("attn_implementation")

    def load() -> Any:
        kwargs: dict[str, Any] = {"dtype": torch.float32}
        if attn:
            kwargs["attn_implementation"] = attn
        return AutoModelForCausalLM.from_pretrained(cfg["base_model"], **kwargs)

    if rl == "dpo":
        from trl import DPOConfig, DPOTrainer

        config: Any = DPOConfig(**args)
        trainer_cls: Any = DPOTrainer
    else:
        from inspo_plugin import InSPOConfig, InSPOTrainer

        config = InSPOConfig(**args)
        trainer_cls = InSPOTrainer
    trainer = trainer_cls(
        model=load(),
        ref_model=load(),
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=cfg.get("resume_from_checkpoint"))
    seconds = time.monotonic() - started
    trainer.save_model(cfg["output_dir"])
    tokenizer.save_pretrained(cfg["output_dir"])
    trainer.state.save_to_json(str(Path(cfg["output_dir"]) / "trainer_state.json"))
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text("\n".join(json.dumps(e) for e in trainer.state.log_history) + "\n")
    return seconds


def log_history(output_dir: Path) -> list[dict[str, Any]]:
    """The training log of a finished run (its final or latest checkpoint's ``trainer_state.json``)."""
    from inspo_plugin.evaluation.plots import load_log_history

    return load_log_history(output_dir)


# --- the table ---------------------------------------------------------------------------------

# Every held-out prompt asks for a description, an explanation, tips or a message (the base tasks of
# scripts/make_preference_data.py), none of which fits in SHORT_ANSWER_WORDS words; the base model
# answers one of the 132 that briefly. An answer that short can pass a constraint without doing the
# task ('"The Great Gatsby"' is at most 40 words, has no comma and is wrapped in quotes), so the table
# also reports the pass rate that counts such an answer as a fail, and how often a run gives one.


def _per_item(result: Mapping[str, Any], metric: str) -> list[float] | None:
    if metric in ("pass_answered", "short"):
        passes, responses = result.get("passes"), result.get("responses")
        if passes is None or responses is None or len(passes) != len(responses):
            return None
        short = [is_short_answer(str(text)) for text in responses]
        if metric == "short":
            return [float(s) for s in short]
        return [float(p and not s) for p, s in zip(passes, short, strict=True)]
    if metric in ("pass", "pass_new_kinds"):
        passes = result.get("passes")
        if passes is None:
            return None
        if metric == "pass":
            return [float(p) for p in passes]
        # the prompts whose constraint kind no training row has (the test split's heldout: constraint)
        groups = result.get("item_groups")
        if groups is None or len(groups) != len(passes):
            return None
        return [float(p) for p, group in zip(passes, groups, strict=True) if group == NEW_KINDS_GROUP]
    per_pair = (result.get("preference") or {}).get("per_pair")
    if not per_pair:
        return None
    margins = [float(m) for m in per_pair["margin_uncond"]]
    return [float(m > 0) for m in margins] if metric == "acc" else margins


def _item_table(
    results: Mapping[str, Mapping[int, Mapping[str, Any]]], run: str, metric: str, seeds: Sequence[int]
) -> np.ndarray | None:
    """``run``'s per-item scores for ``metric``, one row per seed in ``seeds`` (``None`` when a seed's
    result lacks them or ``seeds`` is empty)."""
    rows = [_per_item(results[run][s], metric) for s in seeds]
    if not seeds or any(r is None for r in rows):
        return None
    if len({len(r) for r in rows if r is not None}) != 1:
        raise ValueError(f"run {run}: seeds {list(seeds)} scored different numbers of items for {metric}")
    return np.array(rows, dtype=np.float64)


METRICS = {
    "pass": "constraint pass rate",
    "pass_new_kinds": "constraint pass rate on held-out constraint kinds",
    "pass_answered": f"constraint pass rate, an answer of at most {SHORT_ANSWER_WORDS} words counted as a fail",
    "short": f"share of answers of at most {SHORT_ANSWER_WORDS} words",
    "acc": "pref. acc. (deployed)",
    "margin": "margin (deployed)",
}
PASS_METRICS = ("pass", "pass_new_kinds", "pass_answered", "short")  # compared with the base model too
# The test split's ``heldout`` field: "constraint" rows use a constraint kind no training row has
# (transfer), "prompt" rows a trained kind on an unseen prompt.
NEW_KINDS_GROUP = "constraint"


def _train_seconds(result: Mapping[str, Any]) -> float | None:
    """A run's training time, or None when unknown (a resumed run's time covers its last invocation only)."""
    seconds = result.get("train_seconds")
    if not seconds or result.get("resumed_from"):
        return None
    return float(seconds)


def machine_name(device: str | None) -> str:
    """What trained a run — the GPU, or the CPU model and its core count — so that training times are
    compared within one machine only."""
    if device == "cuda":
        import torch

        return f"{torch.cuda.get_device_name()}, cuda"
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        lines = (line.partition(":") for line in cpuinfo.read_text().splitlines())
        fields = {key.strip(): value.strip() for key, _, value in lines if value}
        if "model name" in fields:
            # the family and model tell apart CPU generations sold under one name ("AMD EPYC")
            model = f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"
    return f"{model}, {os.cpu_count()} cores"


def study_summary(
    results: Mapping[str, Mapping[int, Mapping[str, Any]]],
    base: Mapping[str, Any] | None,
    *,
    n_resamples: int = 10_000,
) -> dict[str, dict[str, Any]]:
    """Per run: seeds, mean over seeds of each metric, and the paired differences to DPO (``vs_dpo``,
    paired by held-out item and seed, over the seeds both have), for the variants of InSPO-DPO
    (``inspo-*`` runs) to plain InSPO-DPO as well (``vs_inspo``), and, for the pass rates, to the base
    model (``vs_base``).

    ``results[run][seed]`` is a saved evaluation (``passes``, ``preference.per_pair``; ``item_groups``,
    the test split's ``heldout`` field per answered prompt, for the pass rate on held-out constraint
    kinds — :func:`load_study` adds it).
    """
    from inspo_plugin.evaluation.stats import paired_seed_difference

    summary: dict[str, dict[str, Any]] = {}
    base_items = {metric: _per_item(base, metric) if base else None for metric in PASS_METRICS}
    for run, by_seed in results.items():
        seeds = sorted(by_seed)
        entry: dict[str, Any] = {"seeds": seeds, "train_seconds": None, "train_time_vs_dpo": None}
        times = {s: t for s in seeds if (t := _train_seconds(by_seed[s])) is not None}
        if times:
            entry["train_seconds"] = sum(times.values()) / len(times)
        entry["train"] = {s: {"seconds": times.get(s), "machine": by_seed[s].get("machine")} for s in seeds}
        if run != "dpo" and "dpo" in results:
            # like for like: the same seed's DPO run on the same machine (runs saved before machines
            # were recorded, all on one machine, count as one)
            ratios = [
                t / dpo_time
                for s, t in times.items()
                if s in results["dpo"]
                and (dpo_time := _train_seconds(results["dpo"][s])) is not None
                and results["dpo"][s].get("machine") == by_seed[s].get("machine")
            ]
            if ratios:
                entry["train_time_vs_dpo"] = {"mean": sum(ratios) / len(ratios), "n_seeds": len(ratios)}
        # DPO is every run's baseline; plain InSPO-DPO also is its variants' (uncond_weight, template, β)
        baselines = {"vs_dpo": "dpo", **({"vs_inspo": "inspo"} if run.startswith("inspo-") else {})}
        for metric in METRICS:
            own = _item_table(results, run, metric, seeds)
            if own is None:
                continue
            entry[metric] = {"mean": float(own.mean())}
            for key, baseline in baselines.items():
                if run == baseline or baseline not in results:
                    continue
                common = [s for s in seeds if s in results[baseline]]
                other = _item_table(results, baseline, metric, common)
                mine = _item_table(results, run, metric, common)
                if other is not None and mine is not None:
                    if len(other[0]) != len(mine[0]):
                        raise ValueError(
                            f"{run} and {baseline} scored different numbers of items for {metric}"
                        )
                    entry[metric][key] = paired_seed_difference(mine, other, n_resamples=n_resamples)
            base_passes = base_items.get(metric)
            if base_passes is not None:
                if len(base_passes) != len(own[0]):
                    raise ValueError(f"{run} and the base model answered different numbers of prompts")
                entry[metric]["vs_base"] = paired_seed_difference(own, base_passes, n_resamples=n_resamples)
        summary[run] = entry
    return summary


def study_contrast(
    first: Mapping[str, Mapping[int, Mapping[str, Any]]],
    second: Mapping[str, Mapping[int, Mapping[str, Any]]],
    *,
    n_resamples: int = 10_000,
) -> dict[str, dict[str, Any]]:
    """Two studies that differ only in their training data, run by run: how each metric changes.

    For every run saved in both studies, over the seeds both have, per metric: the means on either
    data, ``change`` — the run on the second data minus the same run on the first, paired by held-out
    item and seed — and, for runs other than DPO, ``change_vs_dpo``, a difference in differences:

        (run − DPO on the second data) − (run − DPO on the first data),

    per (seed, item) cell, over the seeds all four trainings have. It is positive when the second data
    helps the run more than it helps DPO. Both studies must score the same held-out items (every study
    of ``bench/compare.py`` evaluates on the whole shipped held-out split).
    """
    from inspo_plugin.evaluation.stats import paired_seed_difference

    contrast: dict[str, dict[str, Any]] = {}
    for run in first:
        if run not in second:
            continue
        seeds = sorted(set(first[run]) & set(second[run]))
        if not seeds:
            continue
        entry: dict[str, Any] = {"seeds": seeds}
        with_dpo = [s for s in seeds if s in first.get("dpo", {}) and s in second.get("dpo", {})]
        for metric in METRICS:
            a, b = _item_table(first, run, metric, seeds), _item_table(second, run, metric, seeds)
            if a is None or b is None:
                continue
            if a.shape != b.shape:
                raise ValueError(f"run {run}: the two studies scored different numbers of items for {metric}")
            entry[metric] = {
                "first": float(a.mean()),
                "second": float(b.mean()),
                "change": paired_seed_difference(b, a, n_resamples=n_resamples),
            }
            if run == "dpo" or not with_dpo:
                continue
            rows = [seeds.index(s) for s in with_dpo]
            dpo_a = _item_table(first, "dpo", metric, with_dpo)
            dpo_b = _item_table(second, "dpo", metric, with_dpo)
            if dpo_a is None or dpo_b is None:
                continue
            if dpo_a.shape != a[rows].shape or dpo_b.shape != b[rows].shape:
                raise ValueError(f"{run} and dpo scored different numbers of items for {metric}")
            entry[metric]["change_vs_dpo"] = paired_seed_difference(
                b[rows] - dpo_b, a[rows] - dpo_a, n_resamples=n_resamples
            )
        contrast[run] = entry
    return contrast


def contrast_markdown(contrast: Mapping[str, Mapping[str, Any]], first: str, second: str) -> str:
    """The contrast's table: per run and metric, first → second data, the change and its change vs DPO."""
    header = ["run", "seeds"]
    for name in (
        "pass rate",
        "pass rate, held-out kinds",
        f"pass rate, answers > {SHORT_ANSWER_WORDS} words",
        "pref. acc.",
        "margin",
    ):
        header += [f"{name}: {first} → {second}", f"Δ {name}", f"Δ ({name} − DPO's)"]
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    for run, entry in contrast.items():
        n = len(entry["seeds"])
        cells = [label(run), ", ".join(str(s) for s in entry["seeds"])]
        for metric, scale, digits, unit in (
            ("pass", 100.0, 1, "%"),
            ("pass_new_kinds", 100.0, 1, "%"),
            ("pass_answered", 100.0, 1, "%"),
            ("acc", 100.0, 1, "%"),
            ("margin", 1.0, 2, ""),
        ):
            cell = entry.get(metric)
            if not cell:
                cells += ["—", "—", "—"]
                continue
            cells += [
                f"{scale * cell['first']:.{digits}f}{unit} → {scale * cell['second']:.{digits}f}{unit}",
                _cell(cell["change"], scale, digits, n),
                _cell(cell.get("change_vs_dpo"), scale, digits, n),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _cell(diff: Mapping[str, Any] | None, scale: float, digits: int, n_seeds: int) -> str:
    if not diff:
        return "—"
    mean, low, high = (diff[k] * scale for k in ("mean", "ci_low", "ci_high"))
    text = f"{mean:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
    return text if diff["n_seeds"] == n_seeds else f"{text} ({_seeds(diff['n_seeds'])})"


def _ratio_cell(ratio: Mapping[str, Any] | None, n_seeds: int) -> str:
    if not ratio:
        return "—"
    text = f"{ratio['mean']:.2f}×"
    return text if ratio["n_seeds"] == n_seeds else f"{text} ({_seeds(ratio['n_seeds'])})"


def summary_markdown(summary: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None) -> str:
    """The study's table: means over seeds and paired differences with 95% CIs."""
    header = [
        "run", "seeds", "pass rate", "Δ pass vs base", "Δ pass vs DPO", "Δ pass vs InSPO-DPO",
        "pass rate, held-out kinds", "Δ vs base", "Δ vs DPO",
        f"pass rate, answers > {SHORT_ANSWER_WORDS} words", "Δ vs DPO", f"answers ≤ {SHORT_ANSWER_WORDS} words",
        "pref. acc. (deployed)", "Δ acc vs DPO",
        "margin (deployed)", "Δ margin vs DPO", "train time / seed", "train time ÷ DPO's",
    ]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    if base:
        rates = [_per_item(base, metric) for metric in PASS_METRICS]
        cells = [f"{100.0 * sum(r) / len(r):.1f}%" if r else "—" for r in rates]
        row = [BASE_LABEL, "—", cells[0], "—", "—", "—", cells[1], "—", "—", cells[2], "—", cells[3]]
        row += ["—"] * (len(header) - len(row))
        lines.append("| " + " | ".join(row) + " |")
    for run, entry in summary.items():
        n = len(entry["seeds"])
        pas, acc, mar = entry.get("pass", {}), entry.get("acc", {}), entry.get("margin", {})
        new = entry.get("pass_new_kinds", {})
        answered, short = entry.get("pass_answered", {}), entry.get("short", {})
        cells = [
            label(run),
            ", ".join(str(s) for s in entry["seeds"]),
            f"{100 * pas['mean']:.1f}%" if pas else "—",
            _cell(pas.get("vs_base"), 100.0, 1, n),
            _cell(pas.get("vs_dpo"), 100.0, 1, n),
            _cell(pas.get("vs_inspo"), 100.0, 1, n),
            f"{100 * new['mean']:.1f}%" if new else "—",
            _cell(new.get("vs_base"), 100.0, 1, n),
            _cell(new.get("vs_dpo"), 100.0, 1, n),
            f"{100 * answered['mean']:.1f}%" if answered else "—",
            _cell(answered.get("vs_dpo"), 100.0, 1, n),
            f"{100 * short['mean']:.1f}%" if short else "—",
            f"{100 * acc['mean']:.1f}%" if acc else "—",
            _cell(acc.get("vs_dpo"), 100.0, 1, n),
            f"{mar['mean']:.2f}" if mar else "—",
            _cell(mar.get("vs_dpo"), 1.0, 2, n),
            f"{entry['train_seconds'] / 60:.1f} min" if entry.get("train_seconds") else "—",
            _ratio_cell(entry.get("train_time_vs_dpo"), n),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def curve_histories(
    results: Mapping[str, Mapping[int, Mapping[str, Any]]],
) -> dict[str, list[list[dict[str, Any]]]]:
    """Per run label, the saved training logs of its seeds. DPO's ``rewards/margins`` (β times the
    deployed log-ratio margin) is added as ``inspo/margin_uncond`` (divided by β) so both share a panel."""
    curves: dict[str, list[list[dict[str, Any]]]] = {}
    for run, by_seed in results.items():
        histories = []
        for seed in sorted(by_seed):
            history = [dict(e) for e in by_seed[seed].get("log_history") or []]
            beta = by_seed[seed].get("beta")
            for entry in history:
                if "rewards/margins" in entry and "inspo/margin_uncond" not in entry and beta:
                    entry["inspo/margin_uncond"] = float(entry["rewards/margins"]) / float(beta)
            if history:
                histories.append(history)
        if histories:
            curves[label(run)] = histories
    return curves


def load_study(
    runs_dir: Path, item_groups: Sequence[str] | None = None
) -> dict[str, dict[int, dict[str, Any]]]:
    """Every saved ``RUN.seedN.json`` of a study, as ``{run: {seed: result}}`` in :data:`RUNS` order.

    ``item_groups`` (the test split's ``heldout`` field, row by row) labels the answered prompts of
    results saved without it: every study answers the shipped test split's prompts in order."""
    found: dict[str, dict[int, dict[str, Any]]] = {}
    for path in sorted(runs_dir.glob("*.seed*.json")):
        run, _, seed = path.name.removesuffix(".json").rpartition(".seed")
        if run in RUNS and seed.isdigit():
            found.setdefault(run, {})[int(seed)] = with_item_groups(json.loads(path.read_text()), item_groups)
    return {run: found[run] for run in RUNS if run in found}


def with_item_groups(result: dict[str, Any], item_groups: Sequence[str] | None) -> dict[str, Any]:
    """``result`` with ``item_groups`` for its answered prompts (the first ``len(passes)`` labels)."""
    if item_groups is not None and "item_groups" not in result and result.get("passes") is not None:
        result["item_groups"] = list(item_groups)[: len(result["passes"])]
    return result


def held_out_groups(test_rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The test split's ``heldout`` label per row — the prompts every study answers, in order."""
    return [str(row.get("heldout")) for row in test_rows]


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS, choices=list(RUNS))
    parser.add_argument(
        "--seeds", type=int, default=1, help="seeds per run: the recipe's seed and the next ones"
    )
    parser.add_argument(
        "--data",
        default="mixed",
        choices=DATA_VARIANTS,
        help="data variant to train on; every study is evaluated on the same held-out split (all of "
        "the shipped test rows), so that runs on different data compare",
    )
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="optimizer steps (default: the recipe's)")
    length.add_argument("--epochs", type=int, default=None, help="whole epochs over the training split")
    parser.add_argument(
        "--engine", choices=ENGINES, default=None, help="default: axolotl when installed, else trl"
    )
    parser.add_argument(
        "--generate", type=int, default=None, help="held-out prompts to answer (default: all)"
    )
    parser.add_argument("--pairs", type=int, default=40, help="held-out pairs to score (0: all)")
    parser.add_argument("--output", default="bench/results/compare", help="reports: OUTPUT/STUDY/")
    parser.add_argument(
        "--work-dir", default="outputs/bench", help="checkpoints and configs: WORK_DIR/STUDY/"
    )
    parser.add_argument(
        "--contrast",
        nargs=2,
        metavar=("FIRST", "SECOND"),
        choices=DATA_VARIANTS,
        default=None,
        help="train nothing: compare the saved studies on two data variants (same length and engine), "
        "run by run — the change of each metric from FIRST to SECOND and of its difference to DPO — "
        "into OUTPUT/contrast-FIRST-SECOND-LENGTH-ENGINE.{md,json}",
    )
    args = parser.parse_args(argv)
    if args.contrast and args.contrast[0] == args.contrast[1]:
        parser.error("--contrast needs two different data variants")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if (args.steps is not None and args.steps < 1) or (args.epochs is not None and args.epochs <= 0):
        parser.error("--steps / --epochs must be positive")
    return args


def write_contrast(
    output: Path, data: Sequence[str], steps: int | None, epochs: int | None, engine: str
) -> int:
    """``--contrast``: the table of :func:`study_contrast` for two saved studies, written next to them."""
    first, second = (output / study_name(d, steps, epochs, engine) for d in data)
    for study in (first, second):
        if not any((study / "runs").glob("*.seed*.json")):
            raise SystemExit(f"--contrast: no saved runs in {study / 'runs'}; train that study first")
    groups = held_out_groups(load_variant("test", "mixed"))
    contrast = study_contrast(load_study(first / "runs", groups), load_study(second / "runs", groups))
    if not contrast:
        raise SystemExit(f"--contrast: {first.name} and {second.name} have no run with a seed in common")
    name = f"contrast-{data[0]}-{data[1]}-{budget_name(steps, epochs)}-{engine}"
    table = contrast_markdown(contrast, data[0], data[1])
    (output / f"{name}.json").write_text(json.dumps(contrast, indent=2))
    (output / f"{name}.md").write_text(
        f"# SmolLM2-135M-Instruct, {budget_name(steps, epochs)}, engine {engine}: trained on {data[0]} vs "
        f"{data[1]}\n\n{table}\n\nMeans over the seeds both studies have (`{first.name}`, `{second.name}`). "
        f"Δ: the run trained on {data[1]} minus the same run trained on {data[0]}; Δ (… − DPO's): that "
        "change minus DPO's, a difference in differences (positive: the second data helps the run more "
        "than DPO). Brackets: paired bootstrap 95% CIs, resampling held-out items (prompts for the pass "
        "rate, pairs for accuracy and margin) and seeds together. Held-out kinds: the prompts whose "
        "constraint kind no training row has.\n"
    )
    print(f"{table}\n\n[bench] wrote {output / name}.md")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from inspo_plugin.offline import apply_offline_defaults

    apply_offline_defaults()
    engine = args.engine or default_engine()
    if engine == "axolotl" and importlib.util.find_spec("axolotl") is None:
        raise SystemExit("--engine axolotl: axolotl is not installed here; use --engine trl")
    recipe = yaml.safe_load(RECIPE.read_text())
    steps = args.steps if args.steps or args.epochs else int(recipe["max_steps"])
    if args.contrast:
        return write_contrast(Path(args.output), args.contrast, steps, args.epochs, engine)
    study = study_name(args.data, steps, args.epochs, engine)
    work = Path(args.work_dir) / study
    report_dir = Path(args.output) / study
    runs_dir = report_dir / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)

    import torch

    from inspo_plugin.evaluation.report import evaluate_checkpoint
    from inspo_plugin.models.smollm2 import materialize_smollm2

    device = "cuda" if torch.cuda.is_available() else None
    machine = machine_name(device)  # saved with every run: training times compare within one machine
    materialize_smollm2(MODEL_DIR)
    train_rows = load_variant("train", args.data)
    # The same held-out prompts and pairs for every variant: the pass rate of greedy answers depends on
    # the prompts only, and a variant's own test rows (31 both-sampled ones for natural) would make
    # studies on different training data incomparable.
    test_rows = load_variant("test", "mixed")
    train_file = write_train_file(train_rows, Path(args.work_dir) / "data" / args.data / "train.jsonl")
    generate = args.generate or len(test_rows)
    pairs = args.pairs or len(test_rows)
    print(
        f"[bench] study {study}: {len(train_rows)} training pairs, engine {engine}, device {device or 'cpu'}"
    )

    base_path = report_dir / "base.json"
    groups = held_out_groups(test_rows)
    if base_path.is_file():
        base = with_item_groups(json.loads(base_path.read_text()), groups)
    else:
        print("[bench] evaluating the base model")
        base = evaluate_checkpoint(MODEL_DIR, MODEL_DIR, test_rows, generate=generate, device=device)
        base_path.write_text(json.dumps(with_item_groups(base, groups)))
    reference_logps = None
    failed: list[str] = []
    seeds = seeds_for(int(recipe.get("seed", 42)), args.seeds)
    train: Callable[[dict[str, Any], Path, Path], float] = (
        (lambda cfg, path, log: train_axolotl(path, log))
        if engine == "axolotl"
        else (lambda cfg, path, log: train_trl(cfg, log))
    )
    for name in args.runs:
        for seed in seeds:
            saved = runs_dir / f"{name}.seed{seed}.json"
            if saved.is_file():
                print(f"[bench] {name} seed {seed}: saved result reused ({saved})")
                continue
            run_dir = work / name / f"seed{seed}"
            cfg = run_config(
                recipe,
                name,
                seed=seed,
                train_file=train_file,
                n_train_rows=len(train_rows),
                out_dir=run_dir,
                prepared_dir=work / "prepared" / name / f"seed{seed}",
                steps=steps,
                epochs=args.epochs,
            )
            key = fingerprint(cfg)
            twin = next(
                (
                    p
                    for p in runs_dir.glob(f"*.seed{seed}.json")
                    if json.loads(p.read_text()).get("fingerprint") == key
                ),
                None,
            )
            if twin is not None:
                result = {**json.loads(twin.read_text()), "same_config_as": twin.name}
                saved.write_text(json.dumps(result, default=str))
                print(f"[bench] {name} seed {seed}: the same config as {twin.name}; its result is reused")
                continue
            resume_from = resume_point(run_dir, key)
            cfg = checkpointed(cfg, resume_from)
            config_path = work / f"{name}.seed{seed}.yml"
            config_path.parent.mkdir(parents=True, exist_ok=True)
            config_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            resuming = f", resuming from {resume_from.name}" if resume_from else ""
            print(
                f"\n[bench] {name} seed {seed}: training ({budget_name(steps, args.epochs)}, {engine}{resuming})"
            )
            try:
                seconds = train(cfg, config_path, work / f"{name}.seed{seed}.log")
                started = time.monotonic()
                result = evaluate_checkpoint(
                    run_dir,
                    MODEL_DIR,
                    test_rows,
                    generate=generate,
                    max_pairs=pairs,
                    reference_responses=base["reference_responses"],
                    reference_logps=reference_logps,
                    device=device,
                )
            except Exception as error:  # one failed run must not lose the others
                print(f"[bench] {name} seed {seed} FAILED: {error}", file=sys.stderr)
                failed.append(f"{name} seed {seed}: {error}")
                continue
            reference_logps = result["preference"]["reference_logps"]
            result.update(
                run=name,
                seed=seed,
                data=args.data,
                engine=engine,
                budget=budget_name(steps, args.epochs),
                fingerprint=key,
                beta=cfg.get("rl_beta"),
                train_seconds=seconds,
                # train_seconds counts this invocation's steps only when the run was resumed
                resumed_from=resume_from.name if resume_from else None,
                eval_seconds=time.monotonic() - started,
                machine=machine,
                config=str(config_path),
                log_history=log_history(run_dir),
            )
            with_item_groups(result, groups)
            saved.write_text(json.dumps(result, default=str))

    results = load_study(runs_dir, groups)
    summary = study_summary(results, base)
    table = summary_markdown(summary, base)
    title = f"SmolLM2-135M-Instruct, data {args.data}, {budget_name(steps, args.epochs)}, engine {engine}"
    (report_dir / "results.json").write_text(json.dumps(summary, indent=2))
    (report_dir / "results.md").write_text(
        f"# {title}\n\n{table}\n\nMeans over seeds. Brackets: paired bootstrap 95% CIs of the difference "
        "(items: held-out prompts for the pass rate, held-out pairs for accuracy and margin; resampled "
        "together with the seeds both runs have; Δ … vs InSPO-DPO: a variant of InSPO-DPO against plain InSPO-DPO, "
        "results.json has it for every metric). Pass rate: greedy answer to the prompt alone passes the "
        f"verifiable constraint, on all {len(groups)} held-out prompts and on the "
        f"{groups.count(NEW_KINDS_GROUP)} whose constraint kind no training row has (held-out kinds); "
        f"'answers > {SHORT_ANSWER_WORDS} words' counts an answer of at most {SHORT_ANSWER_WORDS} words as a "
        "fail (no held-out prompt can be done in so few), and the next column gives how often a run answers "
        "that briefly. Margins in log-prob units against the base model; 'deployed' = prompted with x alone. Train "
        "time: mean over the seeds trained in one invocation (not resumed), on whatever machine trained "
        "each (results.json names it per seed); ÷ DPO's: the mean over seeds of the run's time over "
        "DPO's with the same seed on the same machine.\n"
    )
    curves = curve_histories(results)
    if curves:
        from inspo_plugin.evaluation.plots import plot_run_comparison

        plot_run_comparison(curves, report_dir / "curves.png", title=title)
    print(f"\n{table}\n\n[bench] wrote {report_dir / 'results.md'}")
    if failed:
        print("[bench] failed runs:\n  " + "\n  ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
