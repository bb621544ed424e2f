"""InSPO on LLaMA-Factory 0.9.5, in LLaMA-Factory's own environment (``make test-llamafactory``).

- the bridge read from LLaMA-Factory's template objects equals the one read from the tokenizer's chat
  template (two independent readings of the same turn structure);
- numerics: on a fixed batch, the adapter's loss and four log-probs equal a computation written here
  from the model's full logits (fp32, 1e-5), and the first answer of sequence A is exactly the
  sequence LLaMA-Factory's own DPO processor builds;
- the real launcher ``inspo-llamafactory`` in subprocesses, on CPU, with a tiny random Llama-3-family
  model: the LoRA recipe on alpaca data with broken rows (reported with index and reason), then
  ``export`` and ``chat`` on its output; the full fine-tuning recipe on sharegpt data with
  ``pref_loss: hinge``, and the same run in two processes with the model sharded by DeepSpeed ZeRO-3,
  equal to the one-process run; FSDP refused on a CPU (accelerate would not shard there); two processes under ``FORCE_TORCHRUN=1`` (gloo, DDP, LoRA) with
  ``pref_loss: ipo``;
- the recipes go through LLaMA-Factory's argument parser.
"""

from __future__ import annotations

import json
import logging
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip(
    "llamafactory",
    reason="LLaMA-Factory pins trl<=0.24 and transformers<=5.6: these tests run in its own environment, "
    "via `make test-llamafactory` (part of `make test`)",
)

import torch
import torch.nn.functional as F
import yaml

from inspo_plugin.offline import offline_env

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes" / "llamafactory"
LAUNCHER = Path(sys.executable).parent / "inspo-llamafactory"
INSPO_METRICS = {
    "inspo/margin_cond",
    "inspo/acc_cond",
    "inspo/margin_uncond",
    "inspo/acc_uncond",
    "inspo/context_chosen",
    "inspo/context_rejected",
    "inspo/logps_chosen",
    "inspo/logps_rejected",
    "inspo/logps_chosen_cond",
    "inspo/logps_rejected_cond",
    "inspo/loss_cond",
}
# A GPU recipe as a short CPU run: no DeepSpeed, FlashAttention or bf16, a few steps, no evaluation.
CPU = [
    "deepspeed=null",
    "flash_attn=sdpa",
    "bf16=false",
    "max_steps=2",
    "logging_steps=1",
    "per_device_train_batch_size=2",
    "gradient_accumulation_steps=1",
    "val_size=0",
    "eval_strategy='no'",  # quoted: OmegaConf reads a bare no as false
    "preprocessing_num_workers=null",
    "plot_loss=false",
]

BROKEN = {  # row -> (field, reason fragment)
    2: ("chosen", "empty"),
    4: ("rejected", "missing"),
    5: ("rejected", "identical to chosen"),
    6: ("instruction", "empty"),
}
TOO_LONG = 7


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> dict[str, Path]:
    """A tiny Llama-3-family checkpoint and a dataset_dir with alpaca and sharegpt ranking data."""
    from inspo_plugin.models.tiny import save_tiny_checkpoint

    root = tmp_path_factory.mktemp("lf")
    model = save_tiny_checkpoint(root / "llama3", "llama3")
    data = root / "data"
    data.mkdir()
    alpaca = [
        {
            "instruction": f"Write a short poem about the sea, number {i}.",
            "input": "",
            "chosen": POEM,
            "rejected": f"No {i}.",
        }
        for i in range(8)
    ]
    broken = [dict(row) for row in alpaca]
    broken[2]["chosen"] = "  "
    broken[4]["rejected"] = None
    broken[5]["rejected"] = broken[5]["chosen"]
    broken[6]["instruction"] = ""
    broken[TOO_LONG]["instruction"] = "Explain photosynthesis briefly. " * 200
    sharegpt = [
        {
            "conversations": [{"from": "human", "value": f"Explain photosynthesis briefly, take {i}."}],
            "chosen": {
                "from": "gpt",
                "value": "Plants turn light, water and carbon dioxide into sugar and oxygen.",
            },
            "rejected": {"from": "gpt", "value": f"I am not sure {i}."},
        }
        for i in range(8)
    ]
    for name, rows in (("alpaca", alpaca), ("broken", broken), ("sharegpt", sharegpt)):
        (data / f"{name}.json").write_text(json.dumps(rows))
    alpaca_columns = {"prompt": "instruction", "query": "input", "chosen": "chosen", "rejected": "rejected"}
    info = {
        "alpaca_prefs": {"file_name": "alpaca.json", "ranking": True, "columns": alpaca_columns},
        "broken_prefs": {"file_name": "broken.json", "ranking": True, "columns": alpaca_columns},
        "sharegpt_prefs": {
            "file_name": "sharegpt.json",
            "formatting": "sharegpt",
            "ranking": True,
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"},
        },
    }
    (data / "dataset_info.json").write_text(json.dumps(info))
    return {"root": root, "model": model, "data": data}


POEM = "the sea is blue and calm, the waves roll in and out."


def launch(work: dict[str, Path], recipe: str, name: str, *overrides: str, env: dict[str, str] | None = None):
    """Run ``inspo-llamafactory train <recipe> <overrides>`` on the tiny model; returns (process, output_dir)."""
    out = work["root"] / name
    args = [
        str(LAUNCHER),
        "train",
        str(RECIPES / recipe),
        f"model_name_or_path={work['model']}",
        f"dataset_dir={work['data']}",
        f"output_dir={out}",
        "cutoff_len=1024",
        *CPU,
        *overrides,
    ]
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=offline_env({**os.environ, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=600,
    )
    # The whole logs, next to the output directory: an assertion message shows only their tails.
    (work["root"] / f"{name}.stdout.log").write_text(proc.stdout)
    (work["root"] / f"{name}.stderr.log").write_text(proc.stderr)
    return proc, out


def log_history(out: Path) -> list[dict[str, Any]]:
    return [
        entry
        for entry in json.loads((out / "trainer_state.json").read_text())["log_history"]
        if "loss" in entry
    ]


# -- in-process: the bridge and the numbers -----------------------------------------------------------


def lf_setup(work: dict[str, Path], **extra: Any):
    """LLaMA-Factory's own arguments, tokenizer, template and pairwise data, with InSPO installed."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    from inspo_plugin.llamafactory.config import split_config
    from inspo_plugin.llamafactory.patch import install

    config = {
        "model_name_or_path": str(work["model"]),
        "stage": "dpo",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "dataset": "alpaca_prefs",
        "dataset_dir": str(work["data"]),
        "template": "llama3",
        "cutoff_len": 1024,
        "output_dir": str(work["root"] / "inproc"),
        "report_to": "none",
        "overwrite_cache": True,
        "inspo": {},
        **extra,
    }
    args, options = split_config(config)
    install(options)
    model_args, data_args, training_args, finetuning_args, _ = get_train_args(args)
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    dataset = get_dataset(template, model_args, data_args, training_args, stage="rm", **tokenizer_module)
    return (
        options,
        (model_args, data_args, training_args, finetuning_args),
        tokenizer_module,
        template,
        dataset,
    )


@pytest.mark.parametrize("lf_template", ["llama3", "qwen"])
@pytest.mark.parametrize("style", ["revise", "concat"])
def test_the_bridge_read_from_lf_templates_is_the_chat_templates(lf_template, style):
    from llamafactory.data.template import TEMPLATES

    from inspo_plugin.core.sequences import make_reflection_format
    from inspo_plugin.llamafactory.data import reflection_format
    from inspo_plugin.models.tiny import build_tiny_tokenizer
    from inspo_plugin.options import InSPOOptions

    family = "llama3" if lf_template == "llama3" else "chatml"
    tokenizer = build_tiny_tokenizer(family)
    ours = reflection_format(TEMPLATES[lf_template], tokenizer, InSPOOptions(template=style))
    theirs = make_reflection_format(tokenizer, style)
    assert ours.turn_end_and_bridge == theirs.turn_end_and_bridge, (ours.text, theirs.text)
    end_of_turn = tokenizer.convert_tokens_to_ids("<|eot_id|>" if family == "llama3" else "<|im_end|>")
    assert ours.turn_end_and_bridge[0] == end_of_turn


@pytest.mark.parametrize("loss_type", ["sigmoid", "hinge"])
def test_adapter_loss_and_logps_equal_an_independent_computation(work, loss_type, caplog):
    import llamafactory.train.dpo.trainer as lf_trainer
    from llamafactory.data.processor import PairwiseDatasetProcessor
    from llamafactory.model import load_model

    from inspo_plugin.core.sequences import Segment
    from inspo_plugin.llamafactory.patch import collator

    _, (model_args, data_args, training_args, finetuning_args), tok_module, template, dataset = lf_setup(
        work, pref_loss=loss_type, pref_beta=0.5
    )
    tokenizer = tok_module["tokenizer"]
    torch.manual_seed(0)
    model = load_model(tokenizer, model_args, finetuning_args, is_trainable=True)
    with torch.no_grad():  # a non-zero adapter, so that policy and reference differ
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    trainer = lf_trainer.CustomDPOTrainer(
        model=model,
        ref_model=None,
        args=training_args,
        finetuning_args=finetuning_args,
        data_collator=None,
        train_dataset=dataset["train_dataset"],
        **tok_module,
    )
    rows = [dataset["train_dataset"][i] for i in range(3)]
    batch = collator(tokenizer=tokenizer)(rows)
    model.eval()
    with torch.no_grad():
        loss, _, result = trainer.inspo_step(model, batch)
    assert trainer.context_gain.seen == 0  # only training batches count for the context-gain check

    # Independent: full logits, log-softmax, sums over the answer segments, by hand.
    ids, mask, seg = batch["inspo_input_ids"], batch["inspo_attention_mask"], batch["inspo_segment_ids"]

    def sums(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logps = torch.log_softmax(logits[:, :-1].double(), -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
        first = (logps * (seg[:, 1:] == Segment.FIRST)).sum(-1)
        second = (logps * (seg[:, 1:] == Segment.SECOND)).sum(-1)
        return first, second

    with torch.no_grad():
        first, second = sums(model(input_ids=ids, attention_mask=mask).logits)
        with model.disable_adapter():
            ref_first, _ = sums(model(input_ids=ids, attention_mask=mask).logits)
    n = len(rows)
    chosen, rejected = first[:n], first[n:]
    rejected_cond, chosen_cond = second[:n], second[n:]  # A: y_l after y_w; B: y_w after y_l
    ref_chosen, ref_rejected = ref_first[:n], ref_first[n:]
    margin = (chosen_cond - ref_chosen) - (rejected_cond - ref_rejected)
    expected = -F.logsigmoid(0.5 * margin) if loss_type == "sigmoid" else torch.relu(1 - 0.5 * margin)
    metrics = result.metrics
    for name, value in (
        ("logps_chosen", chosen),
        ("logps_rejected", rejected),
        ("logps_chosen_cond", chosen_cond),
        ("logps_rejected_cond", rejected_cond),
    ):
        # fp32 sums of ~190 nats: 1e-5 absolute, plus 1e-6 relative (one fp32 ulp of 190 is 1.5e-5).
        torch.testing.assert_close(metrics[f"inspo/{name}"].double(), value, rtol=1e-6, atol=1e-5, msg=name)
    # The margin is a difference of four such fp32 sums (and of the reference's): a few ulps of 190.
    torch.testing.assert_close(metrics["inspo/margin_cond"].double(), margin, rtol=0, atol=1e-4)
    assert (
        ref_chosen.sub(chosen).abs().max() > 1e-3
    )  # the adapter matters: the reference is a different model
    torch.testing.assert_close(loss.double(), expected.mean(), rtol=1e-6, atol=1e-5)

    # Sequence A starts with exactly the chosen sequence LLaMA-Factory's own DPO processor builds.
    plain = PairwiseDatasetProcessor(
        template=template, tokenizer=tokenizer, processor=None, data_args=data_args
    )
    example = {"_prompt": [[{"role": "user", "content": "Write a short poem about the sea, number 0."}]]}
    example |= {
        "_response": [[{"role": "assistant", "content": POEM}, {"role": "assistant", "content": "No 0."}]]
    }
    example |= {"_system": [""], "_tools": [""], "_images": [None], "_videos": [None], "_audios": [None]}
    lf_chosen = plain.preprocess_dataset(example)["chosen_input_ids"][0]
    assert rows[0]["inspo_ids_a"][: len(lf_chosen)] == lf_chosen
    assert rows[0]["inspo_segments_a"][len(lf_chosen)] == Segment.BRIDGE

    # The context-gain warning on training batches, against the gain computed here: pooled over both
    # answers, (sum of cond - plain log-probs) / (answer tokens); it fires just below it, not just above.
    if loss_type == "sigmoid":
        from inspo_plugin.core.context import ContextGainMonitor

        tokens = (seg[:, 1:] == Segment.FIRST).sum().item()
        gain = ((chosen_cond - chosen).sum() + (rejected_cond - rejected).sum()).item() / tokens
        for threshold, fires in ((gain - 1e-3, True), (gain + 1e-3, False)):
            trainer.context_gain = ContextGainMonitor(threshold, batches=1)
            with caplog.at_level(logging.WARNING, logger="inspo_plugin"), torch.no_grad():
                caplog.clear()
                trainer.get_batch_loss_metrics(model, batch, train_eval="train")
            assert any("context_gain_warning" in r.getMessage() for r in caplog.records) is fires, (
                gain,
                threshold,
            )


def test_invalid_rows_stop_the_run_naming_file_row_and_field(work):
    from inspo_plugin.llamafactory.launch import train

    config = yaml.safe_load((RECIPES / "llama3-8b-inspo-lora.yaml").read_text())
    config["inspo"]["on_invalid_row"] = "error"
    config.update(
        model_name_or_path=str(work["model"]), dataset="broken_prefs", dataset_dir=str(work["data"])
    )
    config.update(output_dir=str(work["root"] / "error-run"), bf16=False, preprocessing_num_workers=None)
    path = work["root"] / "error.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(
        ValueError, match=r"broken\.json: row 2, field 'chosen': empty \(4 invalid train rows"
    ):
        train(str(path))


# -- the real launcher, in subprocesses ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lora_run(work):
    return launch(work, "llama3-8b-inspo-lora.yaml", "lora", "dataset=broken_prefs")


def test_lora_recipe_trains_reports_broken_rows_and_saves_an_adapter(lora_run):
    proc, out = lora_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    dropped = [json.loads(line) for line in (out / "inspo_dropped_rows_train.jsonl").read_text().splitlines()]
    assert [d["row"] for d in dropped] == [*sorted(BROKEN), TOO_LONG]
    for entry in dropped[: len(BROKEN)]:
        field, why = BROKEN[entry["row"]]
        assert f"broken.json: row {entry['row']}, field '{field}': {why}" in entry["reason"], entry
    assert dropped[-1]["reason"].startswith("too long:") and "max_length=1024" in dropped[-1]["reason"]
    assert "train: dropped 5 of 8 rows" in proc.stderr
    history = log_history(out)
    assert len(history) == 2 and set(history[0]) >= INSPO_METRICS
    assert all(math.isfinite(entry["loss"]) for entry in history)
    assert {"rewards/accuracies", "rewards/margins", "logps/chosen"} <= set(history[0])
    assert (out / "adapter_model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()


def test_lf_export_and_chat_work_on_the_lora_output(work, lora_run):
    from llamafactory.chat import ChatModel
    from llamafactory.train.tuner import export_model
    from transformers import AutoModelForCausalLM

    _, out = lora_run
    merged = work["root"] / "merged"
    export_model(
        {
            "model_name_or_path": str(work["model"]),
            "adapter_name_or_path": str(out),
            "template": "llama3",
            "finetuning_type": "lora",
            "export_dir": str(merged),
        }
    )
    model = AutoModelForCausalLM.from_pretrained(merged)
    assert not any("lora" in name for name in model.state_dict())
    chat = ChatModel(
        {"model_name_or_path": str(merged), "template": "llama3", "max_new_tokens": 4, "do_sample": False}
    )
    responses = chat.chat([{"role": "user", "content": "Write a poem about the sea."}])
    assert len(responses) == 1 and responses[0].finish_reason in ("stop", "length")


# The full fine-tuning recipe on sharegpt data with hinge, at a learning rate that moves the weights in
# two steps (the recipe's 5e-7 after warm-up would leave them equal to 1e-9), so that runs can be compared.
FULL = ("dataset=sharegpt_prefs", "pref_loss=hinge", "learning_rate=1e-3", "warmup_ratio=0")


@pytest.fixture(scope="module")
def full_run(work):
    return launch(work, "llama3-8b-inspo-full.yaml", "full", *FULL)


def test_full_recipe_on_sharegpt_with_hinge_trains_and_saves_full_weights(full_run):
    proc, out = full_run
    assert proc.returncode == 0, proc.stderr[-4000:]
    first = log_history(out)[0]
    assert set(first) >= INSPO_METRICS
    # Hinge, not sigmoid (LLaMA-Factory 0.9.5's own hinge computes sigmoid with TRL 0.24): with small
    # margins max(0, 1 - beta * m) is 1 - beta * m, and the logged loss is rounded to 4 digits.
    assert abs(first["loss"] - (1 - 0.1 * first["inspo/margin_cond"])) < 2e-4, first
    assert (out / "model.safetensors").is_file() and not (out / "adapter_config.json").exists()
    assert "train: all 8 rows kept" in proc.stderr
    assert "InSPO trainer: 1 process(es), one process; reference: a frozen copy" in proc.stderr


@pytest.mark.slow
def test_zero3_full_fine_tuning_in_two_processes_equals_one_process(work, full_run, tmp_path):
    """Two processes with the model sharded by DeepSpeed ZeRO-3 train exactly as one process does.

    Same global batch (1 pair per process x 2 = 2 pairs in one process): the logged loss, gradient norm
    and ``inspo/*`` metrics of both steps, and the saved weights, match the one-process run. Under ZeRO-3
    each process holds a shard of the policy and of the frozen reference, so equal numbers mean the lean
    log-prob path ran on gathered parameters and the reference was prepared correctly.
    """
    pytest.importorskip("deepspeed", reason="make llamafactory-env installs DeepSpeed (LF's own pin)")
    # The recipe's own ZeRO-3 file, with bf16 off (the one value a CPU cannot run).
    ds = json.loads((ROOT / "recipes" / "deepspeed" / "zero3_bf16.json").read_text())
    ds["bf16"]["enabled"] = False
    (tmp_path / "zero3_cpu.json").write_text(json.dumps(ds))
    proc, out = launch(
        work,
        "llama3-8b-inspo-full.yaml",
        "zero3",
        *FULL,
        "per_device_train_batch_size=1",
        f"deepspeed={tmp_path / 'zero3_cpu.json'}",
        env={"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"},
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    expected = "InSPO trainer: 2 process(es), DeepSpeed ZeRO-3; reference: a frozen copy"
    assert proc.stderr.count(expected) == 2

    from safetensors.torch import load_file

    one = full_run[1]
    for mine, theirs in zip(log_history(out), log_history(one), strict=True):
        for key in ("loss", "grad_norm", *sorted(INSPO_METRICS)):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-5, abs=1e-5), (key, mine, theirs)
    start = load_file(work["model"] / "model.safetensors")
    reference, sharded = load_file(one / "model.safetensors"), load_file(out / "model.safetensors")
    assert sorted(sharded) == sorted(reference)
    # Two Adam steps at 1e-3 move every weight by about 1.5e-3; the sharded run's weights are within 1e-5
    # of the one-process run's (Adam's g / sqrt(v) turns summation-order noise in near-zero gradients
    # into differences of ~2e-6), so a wrong gather or reduction, of size ~1e-3, fails.
    moved = min((reference[k] - start[k]).abs().max().item() for k in reference)
    assert moved > 1e-3
    for key, tensor in reference.items():
        torch.testing.assert_close(
            sharded[key], tensor, rtol=0, atol=1e-5, msg=lambda m, key=key: f"{key}: {m}"
        )


@pytest.mark.slow
def test_two_processes_under_force_torchrun(work):
    env = {"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"}
    proc, out = launch(
        work,
        "llama3-8b-inspo-lora.yaml",
        "ddp",
        "dataset=sharegpt_prefs",
        "pref_loss=ipo",
        "per_device_train_batch_size=1",
        env=env,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-5000:])
    output = proc.stdout + proc.stderr
    assert "world size: 2" in output
    assert output.count("InSPO options:") == 2  # each worker installed InSPO itself
    history = log_history(out)
    assert len(history) == 2 and set(history[0]) >= INSPO_METRICS
    # IPO: mean of (m - 1/(2 tau))^2 with tau = beta = 0.1, at least (mean m - 5)^2 (Jensen): about 25
    # at small margins, where sigmoid (LLaMA-Factory 0.9.5's own `ipo` with TRL 0.24) would be about 0.69.
    first = history[0]
    assert (first["inspo/margin_cond"] - 5) ** 2 - 1e-3 <= first["loss"] < 100, first


def test_fsdp_without_a_gpu_is_refused_before_llamafactory_starts(work):
    """accelerate enables FSDP only on GPU-like devices: on a CPU the fsdp keys are refused, not ignored."""
    proc, _ = launch(
        work,
        "llama3-8b-inspo-full.yaml",
        "fsdp-cpu",
        "fsdp=full_shard auto_wrap",
        f"fsdp_config={RECIPES / 'fsdp2.json'}",
        env={"FORCE_TORCHRUN": "1", "NPROC_PER_NODE": "2"},
    )
    assert proc.returncode == 2
    assert "fsdp: full_shard auto_wrap needs GPUs" in proc.stderr and "world size" not in proc.stderr


def test_a_config_error_fails_before_llamafactory_starts(work, tmp_path):
    bad = tmp_path / "bad.yaml"
    recipe = (RECIPES / "llama3-8b-inspo-lora.yaml").read_text()
    bad.write_text(recipe.replace("pref_loss: sigmoid", "pref_loss: inspo"))
    proc = subprocess.run(
        [str(LAUNCHER), "train", str(bad)], env=offline_env(), capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    assert "pref_loss: inspo is not how InSPO is switched on" in proc.stderr


# -- recipes --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe", ["llama3-8b-inspo-full.yaml", "llama3-8b-inspo-lora.yaml"])
def test_recipes_pass_llamafactorys_argument_parser(work, recipe):
    """LLaMA-Factory's ``get_train_args`` on the recipe, with CPU stand-ins only where a GPU is needed."""
    from llamafactory.hparams import get_train_args

    from inspo_plugin.llamafactory.config import split_config

    config = yaml.safe_load((RECIPES / recipe).read_text())
    args, options = split_config(config, where=recipe)
    assert args["stage"] == "dpo" and args["template"] == "llama3" and options.template == "revise"
    if "full" in recipe:
        assert args["finetuning_type"] == "full" and args["flash_attn"] == "fa2" and args["bf16"] is True
        ds = json.loads((ROOT / args["deepspeed"]).read_text())
        assert ds["zero_optimization"]["stage"] == 3
    else:
        assert args["finetuning_type"] == "lora"
    # Without a GPU: bf16 and the DeepSpeed engine (not installed in the CPU environment) are the only
    # values replaced; the model and data paths point at local files, as the parser checks them.
    cpu = {**args, "bf16": False, "deepspeed": None, "model_name_or_path": str(work["model"])}
    cpu |= {"dataset_dir": str(RECIPES), "output_dir": str(work["root"] / "parse")}
    _, data_args, training_args, finetuning_args, _ = get_train_args(cpu)
    assert finetuning_args.stage == "dpo" and finetuning_args.pref_loss == "sigmoid"
    assert data_args.template == "llama3" and data_args.cutoff_len == args["cutoff_len"]
    assert training_args.learning_rate == args["learning_rate"]
    info = json.loads((RECIPES / "dataset_info.json").read_text())
    assert info[args["dataset"]]["ranking"] is True
    if "full" in recipe:  # the README's FSDP2 variant of this recipe: fsdp keys instead of deepspeed
        fsdp = {"fsdp": "full_shard auto_wrap", "fsdp_config": str(RECIPES / "fsdp2.json")}
        _, _, training_args, _, _ = get_train_args({**cpu, **fsdp})
        plugin = training_args.fsdp_plugin_args  # what HF hands accelerate
        assert plugin["fsdp_version"] == 2 and plugin["auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert (
            plugin["transformer_cls_names_to_wrap"] == "LlamaDecoderLayer" and plugin["reshard_after_forward"]
        )
