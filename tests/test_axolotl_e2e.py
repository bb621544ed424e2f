"""``rl: inspo`` through the real ``axolotl`` CLI on CPU, with a tiny local model.

Each run covers one combination of training mode, template, loss type and input shape; together
they cover full fine-tuning, LoRA, precomputed reference log-probs, all three templates, four loss
types, the three accepted input shapes, a built-in Axolotl DPO type, both launchers, skipped-row
reporting and ``axolotl preprocess``. Every run checks the ``inspo/*`` metrics, the saved checkpoint,
and that the checkpoint loads with plain ``AutoModelForCausalLM`` and generates from a prompt alone.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from tests.axolotl_cli import ROOT, log_history, logged, output_of, run_axolotl, write_config

DATA = ROOT / "tests" / "data"
STEPS = 2
METRICS = (
    "inspo/margin_cond",
    "inspo/acc_cond",
    "inspo/margin_uncond",
    "inspo/acc_uncond",
    "inspo/context_chosen",
    "inspo/context_rejected",
)


def base_config(model: Path, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "base_model": str(model),
        "plugins": ["inspo_plugin.InSPOPlugin"],
        "rl": "inspo",
        "rl_beta": 0.1,
        "inspo": {"loss_type": "sigmoid", "template": "revise"},
        "chat_template": "chatml",
        "datasets": [
            {"path": str(DATA / "prefs_small.jsonl"), "split": "train", "type": "inspo_plugin.reflective"}
        ],
        "dataset_prepared_path": str(tmp_path / "prepared"),
        "dataset_num_proc": 1,
        "sequence_len": 512,
        "max_steps": STEPS,
        "micro_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "learning_rate": 1e-4,
        "optimizer": "adamw_torch",
        "lr_scheduler": "constant",
        "bf16": False,
        "fp16": False,
        "tf32": False,
        "attn_implementation": "sdpa",
        "output_dir": str(tmp_path / "out"),
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": STEPS,
        "save_safetensors": True,
        "seed": 7,
    }
    cfg.update(overrides)
    return cfg


def train(cfg: dict[str, Any], tmp_path: Path, launcher: str = "python") -> list[dict[str, Any]]:
    proc, seconds = run_axolotl("train", write_config(cfg, tmp_path / "cfg.yml"), tmp_path, launcher)
    assert proc.returncode == 0, f"axolotl train failed after {seconds:.0f}s:\n{output_of(proc)}"
    history = log_history(Path(cfg["output_dir"]))
    for name in METRICS:
        values = logged(history, name)
        assert len(values) == STEPS, f"{name} not logged every step: {history}"
        assert all(math.isfinite(v) for v in values), (name, values)
    return history


def assert_plain_checkpoint_generates(output_dir: Path) -> None:
    """Zero inference overhead: a plain HF checkpoint, prompted with x alone."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(output_dir)
    model = AutoModelForCausalLM.from_pretrained(output_dir)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_dict=True,
        return_tensors="pt",
    )
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.e2e
def test_full_finetune_revise_sigmoid_strings_with_skipped_rows(tiny_checkpoint, tmp_path):
    """Default launcher (accelerate); bad rows are skipped, counted and reported with file and row."""
    data = tmp_path / "prefs.jsonl"
    lines = (DATA / "prefs_small.jsonl").read_text().splitlines()
    lines.insert(3, json.dumps({"prompt": "p", "chosen": "same", "rejected": "same"}))
    lines.insert(5, json.dumps({"prompt": "p", "chosen": "", "rejected": "b"}))
    lines.insert(7, json.dumps({"prompt": "long " * 700, "chosen": "a", "rejected": "b"}))
    data.write_text("\n".join(lines) + "\n")
    cfg = base_config(
        tiny_checkpoint,
        tmp_path,
        inspo={"loss_type": "sigmoid", "template": "revise", "on_invalid_row": "skip"},
        datasets=[{"path": str(data), "split": "train", "type": "inspo_plugin.reflective"}],
    )
    train(cfg, tmp_path, launcher="accelerate")
    report = [
        json.loads(x) for x in (tmp_path / "out" / "inspo_dropped_rows_train.jsonl").read_text().splitlines()
    ]
    assert [r["row"] for r in report] == [3, 5, 7]
    assert all(str(data) in r["reason"] for r in report)
    assert "identical to chosen" in report[0]["reason"] and "field 'chosen': empty" in report[1]["reason"]
    assert report[2]["reason"].startswith("too long:")
    assert_plain_checkpoint_generates(tmp_path / "out")


@pytest.mark.e2e
def test_lora_concat_ipo_message_lists(tiny_checkpoint, tmp_path):
    """UltraFeedback shape; the reference is the base model with the adapter disabled."""
    cfg = base_config(
        tiny_checkpoint,
        tmp_path,
        adapter="lora",
        lora_r=4,
        lora_alpha=8,
        lora_dropout=0.0,
        lora_target_linear=True,
        learning_rate=1e-3,
        inspo={"loss_type": "ipo", "template": "concat"},
        datasets=[
            {"path": str(DATA / "prefs_messages.jsonl"), "split": "train", "type": "inspo_plugin.reflective"}
        ],
    )
    history = train(cfg, tmp_path)
    # LoRA starts as the identity, so the policy equals the reference on the first batch.
    assert abs(logged(history, "inspo/margin_uncond")[0]) < 1e-3
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    assert_plain_checkpoint_generates(tmp_path / "out")  # transformers loads base + adapter


@pytest.mark.e2e
def test_precomputed_reference_custom_template_hinge_orca_shape(tiny_checkpoint, tmp_path):
    cfg = base_config(
        tiny_checkpoint,
        tmp_path,
        precompute_ref_log_probs=True,
        inspo={
            "loss_type": "hinge",
            "template": "custom",
            "reflection_prompt": "Look at the answer above critically and write a better one.",
        },
        datasets=[
            {"path": str(DATA / "prefs_orca.jsonl"), "split": "train", "type": "inspo_plugin.reflective"}
        ],
    )
    history = train(cfg, tmp_path)
    assert abs(logged(history, "inspo/margin_uncond")[0]) < 1e-2  # policy == reference before the first step
    assert (tmp_path / "out" / "model.safetensors").is_file()
    assert_plain_checkpoint_generates(tmp_path / "out")


@pytest.mark.e2e
def test_builtin_axolotl_dpo_type_trains_with_rl_inspo(tiny_checkpoint, tmp_path):
    """Switching a DPO recipe is one line: a built-in type (chatml.intel) keeps working with rl: inspo."""
    cfg = base_config(
        tiny_checkpoint,
        tmp_path,
        inspo={"loss_type": "orpo"},
        datasets=[{"path": str(DATA / "prefs_orca.jsonl"), "split": "train", "type": "chatml.intel"}],
    )
    history = train(cfg, tmp_path)
    assert logged(history, "inspo/loss_orpo_nll")
    assert_plain_checkpoint_generates(tmp_path / "out")


@pytest.mark.e2e
def test_axolotl_preprocess_with_rl_inspo(tiny_checkpoint, tmp_path):
    cfg = base_config(tiny_checkpoint, tmp_path)
    proc, seconds = run_axolotl(
        "preprocess", write_config(cfg, tmp_path / "cfg.yml"), tmp_path, launcher=None
    )
    assert proc.returncode == 0, f"axolotl preprocess failed after {seconds:.0f}s:\n{output_of(proc)}"
    prepared = list((tmp_path / "prepared").glob("inspo-*/*"))
    assert prepared, f"nothing prepared under {tmp_path / 'prepared'}"
    shutil.rmtree(tmp_path / "prepared")
