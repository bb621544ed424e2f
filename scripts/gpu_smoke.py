"""GPU smoke test: a few optimizer steps of each GPU setting of the recipes on one GPU, with tiny models.

Run it through ``scripts/gpu-smoke.sh`` (which sets the offline environment and keeps a log). Each case
takes the training settings of a recipe (precision, attention, DeepSpeed ZeRO-3, FSDP2, LoRA, QLoRA,
optimizer, InSPO options) and replaces only what makes it small: the model is a tiny random Llama-3-family
checkpoint built here (``inspo_plugin.models.tiny``), the data four preference pairs repeated, the
learning rate high and the run a few steps long, so that the conditional margin can rise.

Engines:

- ``axolotl``: each case is an Axolotl config trained by ``axolotl train`` (the user's path);
- ``trl``: the same settings through the plain-TRL ``InSPOTrainer`` under ``accelerate launch``
  (DeepSpeed and FSDP2 from an accelerate config file, LoRA/QLoRA via peft), for machines without
  Axolotl (an offline GPU node with a small wheelhouse);
- ``auto`` (default): ``axolotl`` when the ``axolotl`` command and package are installed, else ``trl``.

Checks per case: the run exits 0; every logged ``inspo/*`` metric is finite; the conditional margin
(``inspo/margin_cond``) rises (mean of the last third of the steps above the mean of the first third);
the saved model (or adapter) loads and generates. Cases whose software or hardware is missing are
skipped with the reason; ``summary.json`` lists what ran, what passed and what remained untested.

``--cpu`` runs the same code path on the CPU in fp32 (no DeepSpeed, FSDP or bitsandbytes).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import importlib.metadata
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
PAIRS_FILE = ROOT / "tests" / "data" / "prefs_small.jsonl"

# Settings a case takes from its recipe; everything else (model, data, schedule, output) is the smoke
# run's own.
RECIPE_KEYS = (
    "plugins",
    "rl",
    "rl_beta",
    "inspo",
    "chat_template",
    "special_tokens",
    "bf16",
    "fp16",
    "tf32",
    "attn_implementation",
    "gradient_checkpointing",
    "gradient_checkpointing_kwargs",
    "deepspeed",
    "fsdp_version",
    "fsdp_config",
    "adapter",
    "load_in_4bit",
    "lora_r",
    "lora_alpha",
    "lora_dropout",
    "lora_target_linear",
    "optimizer",
    "adam_beta1",
    "adam_beta2",
    "weight_decay",
    "max_grad_norm",
    "sample_packing",
    "sequence_len",
)


@dataclass(frozen=True)
class Case:
    """One smoke run: a recipe's settings, with a few of them changed (``override``)."""

    name: str
    recipe: str
    what: str
    override: dict[str, Any] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    learning_rate: float = 1e-3


CASES: tuple[Case, ...] = (
    Case(
        "bf16",
        "llama3-inspo.yml",
        "full fine-tune, bf16, one process, no sharding",
        drop=("deepspeed",),
    ),
    Case(
        "zero3",
        "llama3-inspo.yml",
        "full fine-tune, bf16, DeepSpeed ZeRO-3 (recipes/deepspeed/zero3_bf16.json)",
    ),
    Case("fsdp2", "llama3-inspo-fsdp2.yml", "full fine-tune, bf16, FSDP2 full sharding"),
    Case(
        "lora",
        "llama3-inspo-qlora.yml",
        "LoRA adapters on a bf16 base",
        override={"adapter": "lora", "load_in_4bit": False},
        learning_rate=1e-2,
    ),
    Case("qlora", "llama3-inspo-qlora.yml", "QLoRA: LoRA adapters on a 4-bit NF4 base", learning_rate=1e-2),
)

MAX_STEPS = 12
BATCH = 4
N_PAIRS = 4  # distinct pairs, repeated: a random tiny model can learn them in a few steps
FAMILY = "llama3"
CHECKED_PREFIX = ("inspo/", "loss", "rewards/")


# ---- environment ---------------------------------------------------------------------------------------


def have(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def axolotl_available() -> tuple[bool, str]:
    exe = shutil.which("axolotl") or str(Path(sys.executable).parent / "axolotl")
    if not Path(exe).exists():
        return False, "no `axolotl` command on PATH"
    if not have("axolotl"):
        return False, "the axolotl package is not importable"
    return True, exe


def probe_cuda() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"cuda": torch.cuda.is_available()}
    if info["cuda"]:
        info["gpu"] = torch.cuda.get_device_name(0)
        info["bf16"] = torch.cuda.is_bf16_supported()
        info["gpus"] = torch.cuda.device_count()
    return info


def skip_reason(settings: dict[str, Any], cpu: bool, cuda: dict[str, Any]) -> str | None:
    """Why a case cannot run here, or None."""
    if not cpu and not cuda.get("cuda"):
        return "no CUDA device (use --cpu for the CPU code path)"
    if settings.get("deepspeed"):
        if cpu:
            return "--cpu: DeepSpeed ZeRO-3 needs CUDA"
        if not have("deepspeed"):
            return "deepspeed is not installed"
    if settings.get("load_in_4bit"):
        if cpu:
            return "--cpu: bitsandbytes 4-bit needs CUDA"
        if not have("bitsandbytes"):
            return "bitsandbytes is not installed"
    if settings.get("fsdp_config") and cpu:
        return "--cpu: FSDP2 needs a CUDA process group (NCCL)"
    if settings.get("adapter") and not have("peft"):
        return "peft is not installed"
    return None


# ---- inputs ---------------------------------------------------------------------------------------------


def write_pairs(path: Path) -> Path:
    """N_PAIRS distinct pairs from the shipped sample file, each four times (an epoch is 4 steps)."""
    rows = [json.loads(line) for line in PAIRS_FILE.read_text().splitlines() if line.strip()][:N_PAIRS]
    if len(rows) < N_PAIRS:
        raise SystemExit(f"{PAIRS_FILE}: needs {N_PAIRS} rows, has {len(rows)}")
    path.write_text("".join(json.dumps(rows[i % N_PAIRS]) + "\n" for i in range(4 * N_PAIRS)))
    return path


def case_settings(case: Case, *, cpu: bool) -> dict[str, Any]:
    recipe = yaml.safe_load((RECIPES / case.recipe).read_text())
    settings = {k: copy.deepcopy(recipe[k]) for k in RECIPE_KEYS if k in recipe}
    for key in case.drop:
        settings.pop(key, None)
    settings.update(copy.deepcopy(case.override))
    if settings.get("deepspeed"):
        settings["deepspeed"] = str(ROOT / settings["deepspeed"])
    if settings.get("attn_implementation") == "flash_attention_2" and (cpu or not have("flash_attn")):
        settings["attn_implementation"] = "sdpa"
    if cpu:
        settings.update(bf16=False, fp16=False, tf32=False, optimizer="adamw_torch")
    return settings


def axolotl_config(
    settings: dict[str, Any], model: Path, data: Path, out: Path, lr: float, steps: int = MAX_STEPS
) -> dict[str, Any]:
    cfg = dict(settings)
    cfg.update(
        base_model=str(model),
        datasets=[{"path": str(data), "split": "train", "type": "inspo_plugin.reflective"}],
        dataset_prepared_path=str(out / "prepared"),
        dataset_num_proc=1,
        val_set_size=0,
        max_steps=steps,
        micro_batch_size=BATCH,
        gradient_accumulation_steps=1,
        learning_rate=lr,
        lr_scheduler="constant",
        warmup_steps=0,
        output_dir=str(out / "model"),
        logging_steps=1,
        save_strategy="steps",
        save_steps=steps,
        save_safetensors=True,
        seed=42,
    )
    if cfg.get("tf32") == "auto":
        cfg["tf32"] = False
    return cfg


# ---- the TRL engine: one training process (run under `accelerate launch`) -------------------------------


def accelerate_config(settings: dict[str, Any], cpu: bool) -> dict[str, Any]:
    """accelerate's config for one process with the case's sharding."""
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "num_machines": 1,
        "num_processes": 1,
        "machine_rank": 0,
        "mixed_precision": "bf16" if settings.get("bf16") else "no",
        "use_cpu": cpu,
        "distributed_type": "NO",
    }
    if settings.get("deepspeed"):
        cfg["distributed_type"] = "DEEPSPEED"
        cfg["deepspeed_config"] = {"deepspeed_config_file": settings["deepspeed"], "zero3_init_flag": False}
        cfg.pop("mixed_precision")  # taken from the DeepSpeed file
    elif settings.get("fsdp_config"):
        fsdp = settings["fsdp_config"]
        cfg["distributed_type"] = "FSDP"
        cfg["fsdp_config"] = {
            "fsdp_version": int(settings.get("fsdp_version", 2)),
            "fsdp_auto_wrap_policy": fsdp.get("auto_wrap_policy", "TRANSFORMER_BASED_WRAP"),
            "fsdp_transformer_layer_cls_to_wrap": fsdp.get("transformer_layer_cls_to_wrap"),
            "fsdp_reshard_after_forward": bool(fsdp.get("reshard_after_forward", True)),
            "fsdp_activation_checkpointing": bool(fsdp.get("activation_checkpointing", False)),
            "fsdp_offload_params": bool(fsdp.get("offload_params", False)),
            "fsdp_cpu_ram_efficient_loading": bool(fsdp.get("cpu_ram_efficient_loading", False)),
            "fsdp_state_dict_type": fsdp.get("state_dict_type", "FULL_STATE_DICT"),
        }
    return cfg


def trl_worker(config_path: Path) -> int:
    """Train one case with InSPOTrainer; the config is the Axolotl-style dict written by the driver."""
    import torch
    from datasets import load_dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inspo_plugin import InSPOConfig, InSPOTrainer

    cfg = yaml.safe_load(config_path.read_text())
    tokenizer = AutoTokenizer.from_pretrained(cfg["base_model"])
    # The recipe's special tokens (Llama-3: a pad distinct from <|eot_id|>), as axolotl sets them; the tiny
    # tokenizer has every family's special tokens, so nothing is added to the vocabulary.
    for name, token in (cfg.get("special_tokens") or {}).items():
        if tokenizer.convert_tokens_to_ids(token) in (None, tokenizer.unk_token_id):
            raise SystemExit(
                f"special_tokens.{name}: {token!r} is not in the tokenizer of {cfg['base_model']}"
            )
        setattr(tokenizer, name, token)
    dtype = torch.bfloat16 if cfg.get("bf16") else torch.float32
    model_kwargs: dict[str, Any] = {
        "dtype": dtype,
        "attn_implementation": cfg.get("attn_implementation", "sdpa"),
    }
    if cfg.get("load_in_4bit"):
        from transformers import BitsAndBytesConfig

        model_kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=dtype
        )
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"], **model_kwargs)
    peft_config = None
    if cfg.get("adapter") in ("lora", "qlora"):
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=int(cfg["lora_r"]),
            lora_alpha=int(cfg["lora_alpha"]),
            lora_dropout=float(cfg.get("lora_dropout", 0.0)),
            target_modules="all-linear" if cfg.get("lora_target_linear") else None,
            task_type="CAUSAL_LM",
        )
    inspo = cfg.get("inspo") or {}
    args = InSPOConfig(
        output_dir=cfg["output_dir"],
        beta=float(cfg.get("rl_beta", 0.1)),
        **inspo,
        max_length=int(cfg.get("sequence_len", 512)),
        bf16=bool(cfg.get("bf16")),
        tf32=bool(cfg.get("tf32")) or None,
        use_cpu=not torch.cuda.is_available(),
        max_steps=int(cfg["max_steps"]),
        per_device_train_batch_size=int(cfg["micro_batch_size"]),
        gradient_accumulation_steps=int(cfg["gradient_accumulation_steps"]),
        learning_rate=float(cfg["learning_rate"]),
        lr_scheduler_type=cfg.get("lr_scheduler", "constant"),
        warmup_steps=int(cfg.get("warmup_steps", 0)),
        optim=cfg.get("optimizer", "adamw_torch"),
        adam_beta1=float(cfg.get("adam_beta1", 0.9)),
        adam_beta2=float(cfg.get("adam_beta2", 0.999)),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        max_grad_norm=float(cfg.get("max_grad_norm", 1.0)),
        gradient_checkpointing=bool(cfg.get("gradient_checkpointing")),
        gradient_checkpointing_kwargs=cfg.get("gradient_checkpointing_kwargs"),
        deepspeed=cfg.get("deepspeed"),
        logging_steps=1,
        save_strategy="steps",
        save_steps=int(cfg["save_steps"]),
        save_only_model=True,
        report_to=[],
        seed=int(cfg.get("seed", 42)),
        dataset_num_proc=None,
    )
    data = load_dataset("json", data_files=cfg["datasets"][0]["path"], split="train")
    trainer = InSPOTrainer(
        model=model, args=args, train_dataset=data, processing_class=tokenizer, peft_config=peft_config
    )
    trainer.train()
    trainer.save_model(cfg["output_dir"])
    if trainer.accelerator.is_main_process:
        tokenizer.save_pretrained(cfg["output_dir"])
    return 0


# ---- checks ---------------------------------------------------------------------------------------------


def log_history(model_dir: Path) -> list[dict[str, Any]]:
    checkpoints = sorted(model_dir.glob("checkpoint-*"), key=lambda p: int(p.name.rsplit("-", 1)[1]))
    if not checkpoints:
        raise AssertionError(f"no checkpoint-* with trainer_state.json in {model_dir}")
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]


def check_metrics(history: list[dict[str, Any]]) -> dict[str, Any]:
    """Finite training metrics and a rising conditional margin; raises AssertionError otherwise."""
    steps = [h for h in history if "inspo/margin_cond" in h and not any(k.startswith("eval_") for k in h)]
    if len(steps) < 3:
        raise AssertionError(f"expected >= 3 logged steps with inspo/margin_cond, got {len(steps)}")
    bad = [
        f"step {h.get('step')}: {k}={v}"
        for h in steps
        for k, v in h.items()
        if k.startswith(CHECKED_PREFIX) and isinstance(v, int | float) and not math.isfinite(v)
    ]
    if bad:
        raise AssertionError("non-finite metrics: " + "; ".join(bad[:10]))
    inspo_keys = sorted({k for h in steps for k in h if k.startswith("inspo/")})
    margins = [float(h["inspo/margin_cond"]) for h in steps]
    third = max(1, len(margins) // 3)
    first, last = sum(margins[:third]) / third, sum(margins[-third:]) / third
    if not last > first:
        raise AssertionError(
            f"inspo/margin_cond did not rise: first {third} steps {first:.4f}, last {third} {last:.4f} "
            f"(all: {[round(m, 4) for m in margins]})"
        )
    return {
        "steps": len(steps),
        "inspo_metrics": inspo_keys,
        "margin_cond_first": first,
        "margin_cond_last": last,
    }


_GENERATION_LOCK = threading.Lock()


def check_generation(model_dir: Path, settings: dict[str, Any], cpu: bool) -> str:
    """Load the saved model (or base + adapter) and generate a few tokens (one case at a time: the
    lazy imports of transformers and peft are not thread-safe)."""
    with _GENERATION_LOCK:
        return _generate(model_dir, settings, cpu)


def _generate(model_dir: Path, settings: dict[str, Any], cpu: bool) -> str:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = "cpu" if cpu else "cuda"
    dtype = torch.bfloat16 if settings.get("bf16") else torch.float32
    if (model_dir / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    else:
        if not any(model_dir.glob("*.safetensors")):
            raise AssertionError(f"no model weights (*.safetensors) in {model_dir}")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model.to(device).eval()
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Write a short poem about the sea."}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    ).to(device)
    with torch.no_grad():
        logits = model(**prompt).logits
        if not torch.isfinite(logits).all():
            raise AssertionError("the saved model gives non-finite logits")
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    new = out[0, prompt["input_ids"].shape[1] :]
    if new.numel() == 0:
        raise AssertionError("generate() returned no new tokens")
    return tokenizer.decode(new)


# ---- the driver -----------------------------------------------------------------------------------------


def run_logged(cmd: list[str], log: Path, env: dict[str, str], cwd: Path, timeout: float) -> int:
    """Run a command, output to ``log``; on timeout its whole process group (launchers start children)
    is killed and 124 returned."""
    print("  $ " + " ".join(cmd), flush=True)
    with log.open("w") as fh:
        proc = subprocess.Popen(
            cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            fh.write(f"\n[gpu-smoke] timed out after {timeout:.0f} s\n")
            return 124


def tail(path: Path, n: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-n:]) if path.exists() else ""


def run_case(
    case: Case,
    engine: str,
    out: Path,
    model: Path,
    data: Path,
    cpu: bool,
    cuda: dict[str, Any],
    timeout: float,
    port: int = 29500,
    steps: int = MAX_STEPS,
) -> dict[str, Any]:
    settings = case_settings(case, cpu=cpu)
    result: dict[str, Any] = {
        "case": case.name,
        "what": case.what,
        "recipe": f"recipes/{case.recipe}",
        "attention": settings.get("attn_implementation", "sdpa"),
        "precision": "bf16" if settings.get("bf16") else "fp32",
    }
    reason = skip_reason(settings, cpu, cuda)
    if reason:
        return {**result, "status": "skipped", "reason": reason}
    work = out / case.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    cfg = axolotl_config(settings, model, data, work, case.learning_rate, steps)
    cfg_path = work / "config.yml"
    cfg_path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    log = work / "train.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("HF_DATASETS_CACHE", str(work / "hf-datasets"))
    env["MASTER_PORT"] = str(port)  # cases may run side by side: one rendezvous port each
    if cpu:
        env["CUDA_VISIBLE_DEVICES"] = ""
    if engine == "axolotl":
        cmd = [axolotl_available()[1], "train", str(cfg_path)]
        cmd += (
            ["--launcher", "python"]
            if cpu
            else ["--launcher", "accelerate", "--", f"--main_process_port={port}"]
        )
    else:
        acc = work / "accelerate.yml"
        acc_cfg = {**accelerate_config(settings, cpu), "main_process_port": port}
        acc.write_text(yaml.safe_dump(acc_cfg, sort_keys=False))
        cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(acc)]
        cmd += [str(Path(__file__).resolve()), "--worker", str(cfg_path)]
    start = time.monotonic()
    rc = run_logged(cmd, log, env, cwd=work, timeout=timeout)
    result["seconds"] = round(time.monotonic() - start, 1)
    result["log"] = str(log)
    if rc != 0:
        return {**result, "status": "failed", "reason": f"training exited {rc}", "log_tail": tail(log)}
    try:
        result.update(check_metrics(log_history(work / "model")))
        result["generated"] = check_generation(work / "model", settings, cpu)
    except Exception as exc:  # every check failure is reported, the other cases still run
        return {**result, "status": "failed", "reason": f"{type(exc).__name__}: {exc}", "log_tail": tail(log)}
    return {**result, "status": "passed"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(os.environ.get("OUT") or ROOT / "outputs" / "gpu-smoke")
    )
    parser.add_argument("--cpu", action="store_true", help="CPU, fp32: the same code path without a GPU")
    parser.add_argument("--engine", choices=("auto", "axolotl", "trl"), default="auto")
    parser.add_argument("--cases", default=",".join(c.name for c in CASES), help="comma-separated subset")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per case at most")
    parser.add_argument(
        "--budget", type=float, default=0.0, help="seconds for all cases (0: none); later cases are skipped"
    )
    parser.add_argument(
        "--jobs", type=int, default=0, help="cases run side by side (default: all on a GPU, 1 with --cpu)"
    )
    parser.add_argument("--steps", type=int, default=MAX_STEPS, help="optimizer steps per case (>= 3)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return trl_worker(args.worker)

    if args.steps < 3:
        parser.error("--steps: at least 3 (the margin check compares the first and last third)")
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = sorted(set(wanted) - {c.name for c in CASES})
    if unknown:
        parser.error(f"--cases: unknown {unknown}; choose from {[c.name for c in CASES]}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ok, why = axolotl_available()
    engine = args.engine
    engine_note = ""
    if engine == "auto":
        engine = "axolotl" if ok else "trl"
        engine_note = (
            "" if ok else f"Axolotl not used: {why}; the settings run through InSPOTrainer (plain TRL)"
        )
    elif engine == "axolotl" and not ok:
        parser.error(f"--engine axolotl: {why}")
    if engine == "trl" and not (have("trl") and have("datasets")):
        parser.error("--engine trl needs trl and datasets (see scripts/build-wheelhouse.sh)")

    cuda = {"cuda": False} if args.cpu else probe_cuda()
    env_info = {
        "python": sys.version.split()[0],
        **{
            d: version(d)
            for d in (
                "torch",
                "transformers",
                "accelerate",
                "peft",
                "trl",
                "datasets",
                "axolotl",
                "deepspeed",
                "bitsandbytes",
                "flash-attn",
                "inspo-plugin",
            )
        },
        **cuda,
    }
    print(f"[gpu-smoke] engine {engine}; {'CPU (fp32)' if args.cpu else cuda}; output {out}", flush=True)
    if engine_note:
        print(f"[gpu-smoke] {engine_note}", flush=True)

    from inspo_plugin.models.tiny import save_tiny_checkpoint

    start = time.monotonic()
    model = save_tiny_checkpoint(out / f"tiny-{FAMILY}", FAMILY, seed=0)
    data = write_pairs(out / "pairs.jsonl")
    chosen = [c for c in CASES if c.name in wanted]

    def one(index: int, case: Case) -> dict[str, Any]:
        print(f"[gpu-smoke] {case.name}: {case.what}", flush=True)
        timeout = args.timeout
        if args.budget:
            timeout = min(timeout, args.budget - (time.monotonic() - start))
        if timeout < 20:
            return {
                "case": case.name,
                "status": "skipped",
                "reason": f"time budget of {args.budget:.0f} s spent",
            }
        port = 29500 + 17 * (index + 1)
        return run_case(case, engine, out, model, data, args.cpu, cuda, timeout, port=port, steps=args.steps)

    # Tiny models leave a GPU nearly idle: by default every case runs at once (each its own process).
    jobs = args.jobs or (1 if args.cpu else len(chosen))
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        results = list(pool.map(one, range(len(chosen)), chosen))
    for result in results:
        shown = {k: v for k, v in result.items() if k not in ("log_tail", "what")}
        print(f"[gpu-smoke] {result['case']}: {result['status'].upper()} {json.dumps(shown)}", flush=True)
        if result["status"] == "failed":
            print(result.get("log_tail", ""), flush=True)

    untested = [f"{r['case']}: {r['reason']}" for r in results if r["status"] == "skipped"]
    if engine != "axolotl":
        untested.insert(0, f"`axolotl train` itself: {engine_note or 'engine trl chosen'}")
    flash = {r.get("attention") for r in results if r["status"] != "skipped"}
    if "flash_attention_2" not in flash and not args.cpu:
        untested.append("FlashAttention: flash-attn is not installed, the recipes' attention ran as sdpa")
    summary = {
        "engine": engine,
        "cpu": args.cpu,
        "seconds": round(time.monotonic() - start, 1),
        "environment": env_info,
        "settings": {
            "model": f"tiny {FAMILY} (random)",
            "steps": args.steps,
            "batch": BATCH,
            "pairs": N_PAIRS,
        },
        "cases": results,
        "untested": untested,
        "passed": all(r["status"] != "failed" for r in results)
        and any(r["status"] == "passed" for r in results),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"[gpu-smoke] {sum(r['status'] == 'passed' for r in results)} passed, "
        f"{sum(r['status'] == 'failed' for r in results)} failed, {len(untested)} untested:"
    )
    for line in untested:
        print(f"  - {line}")
    print(f"[gpu-smoke] summary: {out / 'summary.json'} ({summary['seconds']} s)", flush=True)
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
