"""Cost of one InSPO training step against one DPO step: same model, same pairs, same run.

Both losses are computed by the trainers themselves, so the benchmark follows their code paths:

- ``dpo``: TRL's own ``trl.DPOTrainer`` (its data preparation, its ``DataCollatorForPreference``,
  its ``compute_loss``: one policy forward over [x·y_w; x·y_l] and one reference forward);
- ``inspo``: ``inspo_plugin.InSPOTrainer`` (its preparation, ``DataCollatorForInSPO``, its
  ``compute_loss``: one policy forward over the reflective sequences [A; B] and the reference
  forward over the plain pairs, scored exactly as DPO scores them).

The model is a random-initialised Llama of a chosen size (``SIZES``: ``1b`` is Llama-3.2-1B's shape,
``8b`` Llama-3-8B's) and the data synthetic: a word-level tokenizer built in-process maps the words
``t<i>`` to token ids one to one, so a shape ``B×(P+2·R)`` gives B pairs of a P-token prompt and two
R-token answers (R counts the end-of-turn token TRL appends). Nothing is downloaded.

Measured per case and per mode, with and without gradient checkpointing
(``gradient_checkpointing_enable(use_reentrant=False)``):

- ``median_s``: median time of ``compute_loss`` + ``backward`` after warm-up;
- ``peak_gib`` / ``step_gib`` (CUDA only): peak allocated memory during those steps, absolute and
  above what was allocated before them (weights of policy and reference);
- ``saved_bytes``: bytes the autograd graph of one step keeps for backward, counted with
  ``torch.autograd.graph.saved_tensors_hooks`` over unique storages (a view is not counted twice;
  parameters and buffers are left out: they exist whatever the objective);
- ``ref_forwards_with_precompute``: with ``precompute_ref_log_probs=True``, how many reference
  forwards run during training steps (counted by forward hooks: every call of the reference model,
  plus every policy call made without grad, which is how a PEFT or implicit reference is scored);
  ``<mode>_ref_forwards_per_step`` is the same count in one step of the measured trainers (no
  precompute: 1), a check of the hook.

``token_work_ratio`` is InSPO's work over DPO's, in token-forwards, from the real collated batches:
a policy forward+backward costs about 3 forwards, a reference forward 1 (with gradient checkpointing
the policy costs 4), so with T the number of positions of a batch tensor (padding included)::

    token_work_ratio    = (3·T(inspo_input_ids) + T(input_ids)) / (3·T(input_ids) + T(input_ids))
    token_work_ratio_gc = (4·T(inspo_input_ids) + T(input_ids)) / (4·T(input_ids) + T(input_ids))

where ``input_ids`` is the plain [x·y_w; x·y_l] batch both trainers' references score. Speed and
memory claims are ratios measured in one run, never absolute timings across machines::

    python bench/step_cost.py --quick                                # CPU, about 3 CPU-minutes
    python bench/step_cost.py --device cuda --dtype bf16 --case 1b:4x128x256 --case 8b:1x256x512

The last line of the output is one JSON object (the headline ratios: over several cases, the
largest); ``--json PATH`` also writes the full results.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import torch

SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=4096,
    ),
    # Vocabulary large against the hidden size, as Llama-3's 128k against 2048: logits dominate
    # the step's memory, on a CPU budget.
    "quick": dict(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=32000,
    ),
    "small": dict(
        hidden_size=512,
        intermediate_size=1536,
        num_hidden_layers=8,
        num_attention_heads=8,
        num_key_value_heads=4,
        vocab_size=32000,
    ),
    # Llama-3.2-1B's shape.
    "1b": dict(
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=16,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    # Llama-3-8B's shape.
    "8b": dict(
        hidden_size=4096,
        intermediate_size=14336,
        num_hidden_layers=32,
        num_attention_heads=32,
        num_key_value_heads=8,
        vocab_size=128256,
    ),
}

QUICK_CASE = "quick:1x32x256"
"""``--quick``: one pair, a 32-token prompt and two 256-token answers, on the ``quick`` model."""

MODES = ("dpo", "inspo")
TARGETS = {
    "saved_bytes_gc": 1.0,  # InSPO's saved bytes ≤ 1.0 × DPO's, gradient checkpointing on
    "saved_bytes": 1.2,  # ≤ 1.2 × DPO's without it
    "step_time_over_token_work": 1.1,  # InSPO/DPO step time ≤ 1.1 × token_work_ratio
}

SPECIAL = ("<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>")
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@dataclass(frozen=True)
class Case:
    """One measurement: a model size and a micro-batch of ``pairs`` × (``prompt`` + 2·``answer``)."""

    size: str
    pairs: int
    prompt: int
    answer: int

    @classmethod
    def parse(cls, text: str) -> Case:
        """``SIZE:BxPxR``, e.g. ``1b:4x128x256`` = 4 pairs × (128 + 2·256) on the 1b model."""
        try:
            size, shape = text.split(":")
            pairs, prompt, answer = (int(v) for v in shape.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--case {text!r}: expected SIZE:BxPxR, e.g. 1b:4x128x256"
            ) from None
        if size not in SIZES:
            raise argparse.ArgumentTypeError(
                f"--case {text!r}: unknown size {size!r}; one of {sorted(SIZES)}"
            )
        if min(pairs, prompt) < 1 or answer < 2:
            raise argparse.ArgumentTypeError(f"--case {text!r}: B, P ≥ 1 and R ≥ 2")
        return cls(size, pairs, prompt, answer)

    def __str__(self) -> str:
        return f"{self.size} {self.pairs}×({self.prompt}+2·{self.answer})"


# -- model, tokenizer, data ------------------------------------------------------------------------


def build_tokenizer(vocab_size: int) -> Any:
    """A word-level tokenizer: ``t<i>`` ↔ one id, ChatML special tokens and template, ``vocab_size`` ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL)}
    vocab.update({f"t{i}": i for i in range(len(SPECIAL), vocab_size)})
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="<unk>",
        pad_token="<|endoftext|>",
        eos_token="<|im_end|>",
        additional_special_tokens=["<|im_start|>"],
        model_max_length=1 << 20,
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build_model(size: str, device: str, dtype: torch.dtype, seed: int) -> Any:
    """A random-initialised ``LlamaForCausalLM`` of ``SIZES[size]``, created on ``device``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(**SIZES[size], max_position_embeddings=8192, attention_dropout=0.0)
    with torch.device(device):
        model = LlamaForCausalLM._from_config(config, dtype=dtype)
    return model.train()


def make_dataset(case: Case, vocab_size: int, rows: int, seed: int) -> Any:
    """``rows`` text pairs whose prompt has ``case.prompt`` tokens and each answer ``case.answer``."""
    from datasets import Dataset

    g = torch.Generator().manual_seed(seed)

    def words(k: int, lead: str = "") -> str:
        ids = torch.randint(len(SPECIAL), vocab_size, (k,), generator=g).tolist()
        return lead + " ".join(f"t{i}" for i in ids)

    # TRL appends the EOS to each answer: R - 1 words + EOS = R tokens.
    data = [
        {
            "prompt": words(case.prompt),
            "chosen": words(case.answer - 1, " "),
            "rejected": words(case.answer - 1, " "),
        }
        for _ in range(rows)
    ]
    return Dataset.from_list(data)


def make_trainer(
    mode: str,
    policy: Any,
    reference: Any,
    tokenizer: Any,
    dataset: Any,
    pairs: int,
    output_dir: str,
    precompute: bool = False,
) -> Any:
    """``trl.DPOTrainer`` (``dpo``) or ``InSPOTrainer`` (``inspo``) on the given models and rows."""
    from trl import DPOConfig, DPOTrainer

    from inspo_plugin import InSPOConfig, InSPOTrainer

    common: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=pairs,
        max_length=None,  # the shapes are the point: nothing truncated
        beta=0.1,
        precompute_ref_log_probs=precompute,
        # DPO's reference forward switches checkpointing off and on again with these kwargs.
        gradient_checkpointing_kwargs={"use_reentrant": False},
        use_cpu=policy.device.type == "cpu",
        report_to="none",
        save_strategy="no",
        dataloader_num_workers=0,
        disable_tqdm=True,
        seed=0,
    )
    if mode == "dpo":
        return DPOTrainer(
            model=policy,
            ref_model=reference,
            args=DPOConfig(**common),
            train_dataset=dataset,
            processing_class=tokenizer,
        )
    return InSPOTrainer(
        model=policy,
        ref_model=reference,
        args=InSPOConfig(**common, loss_type="sigmoid"),
        train_dataset=dataset,
        processing_class=tokenizer,
    )


def first_batch(trainer: Any) -> dict[str, Any]:
    """The first training batch exactly as the trainer builds it (its dataloader and collator), on device."""
    batch = next(iter(trainer.get_train_dataloader()))
    return trainer._prepare_inputs(batch)


# -- measurements ----------------------------------------------------------------------------------


def loss_step(trainer: Any, model: Any, inputs: dict[str, Any]) -> None:
    """One forward+backward of the trainer's own loss, gradients dropped afterwards."""
    loss = trainer.compute_loss(model, inputs)
    loss.backward()
    model.zero_grad(set_to_none=True)


def saved_bytes(trainer: Any, model: Any, inputs: dict[str, Any], exclude: Any = ()) -> int:
    """Bytes autograd saves for backward in one step: unique storages, parameters/buffers excluded."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in skip:
            seen[ptr] = max(seen.get(ptr, 0), storage.nbytes())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = trainer.compute_loss(model, inputs)
    total = sum(seen.values())
    loss.backward()
    model.zero_grad(set_to_none=True)
    return total


def timed_steps(
    trainer: Any, model: Any, inputs: dict[str, Any], warmup: int, repeats: int
) -> dict[str, float | None]:
    """Median step time after ``warmup`` steps; on CUDA the peak memory of the timed steps."""
    cuda = model.device.type == "cuda"
    for _ in range(warmup):
        loss_step(trainer, model, inputs)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss_step(trainer, model, inputs)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    out: dict[str, float | None] = {"median_s": statistics.median(times), "peak_gib": None, "step_gib": None}
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        out.update(peak_gib=peak / 2**30, step_gib=(peak - before) / 2**30)
    return out


@contextlib.contextmanager
def count_reference_forwards(policy: Any, reference: Any) -> Iterator[Callable[[], int]]:
    """Count reference forwards: calls of ``reference``, and calls of ``policy`` made without grad."""
    count = [0]

    def on_reference(*_: Any) -> None:
        count[0] += 1

    def on_policy(*_: Any) -> None:
        if not torch.is_grad_enabled():
            count[0] += 1

    handles = [reference.register_forward_pre_hook(on_reference), policy.register_forward_pre_hook(on_policy)]
    try:
        yield lambda: count[0]
    finally:
        for handle in handles:
            handle.remove()


def reference_forwards(
    mode: str,
    policy: Any,
    reference: Any,
    tokenizer: Any,
    dataset: Any,
    pairs: int,
    precompute: bool,
    steps: int = 2,
) -> int:
    """Reference forwards during ``steps`` training steps of a trainer built with or without precompute."""
    with tempfile.TemporaryDirectory() as out:
        trainer = make_trainer(mode, policy, reference, tokenizer, dataset, pairs, out, precompute=precompute)
        batches = [trainer._prepare_inputs(b) for b in islice(trainer.get_train_dataloader(), steps)]
        if len(batches) < steps:
            raise ValueError(f"{len(dataset)} rows give {len(batches)} batches of {pairs}, need {steps}")
        with count_reference_forwards(policy, reference) as counted:
            for batch in batches:
                loss_step(trainer, policy, batch)
        return counted()


def token_work(dpo_batch: dict[str, Any], inspo_batch: dict[str, Any], policy_cost: int) -> float:
    """InSPO's token-forwards over DPO's: ``(c·T_inspo + T_ref) / (c·T_dpo + T_ref)``, ``c = policy_cost``."""
    t_dpo = dpo_batch["input_ids"].numel()
    t_ref = inspo_batch["input_ids"].numel()  # InSPO's reference scores TRL's plain pairs
    t_inspo = inspo_batch["inspo_input_ids"].numel()
    return (policy_cost * t_inspo + t_ref) / (policy_cost * t_dpo + t_dpo)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def measure_case(
    case: Case,
    device: str,
    dtype: torch.dtype,
    warmup: int,
    repeats: int,
    checkpointing: tuple[bool, ...] = (False, True),
    count_refs: bool = True,
) -> dict[str, Any]:
    """All measurements of one case; see the module docstring for what each number is."""
    from inspo_plugin.offline import apply_offline_defaults

    apply_offline_defaults()
    config = SIZES[case.size]
    tokenizer = build_tokenizer(config["vocab_size"])
    policy = build_model(case.size, device, dtype, seed=0)
    reference = build_model(case.size, device, dtype, seed=1).eval().requires_grad_(False)
    dataset = make_dataset(case, config["vocab_size"], rows=2 * case.pairs, seed=0)
    frozen = [*policy.parameters(), *policy.buffers()]

    result: dict[str, Any] = {
        "case": str(case),
        "size": case.size,
        "params_m": sum(p.numel() for p in policy.parameters()) / 1e6,
        "pairs": case.pairs,
        "prompt_len": case.prompt,
        "answer_len": case.answer,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
    }
    with tempfile.TemporaryDirectory() as out:
        trainers = {m: make_trainer(m, policy, reference, tokenizer, dataset, case.pairs, out) for m in MODES}
        batches = {m: first_batch(t) for m, t in trainers.items()}
        for name, key in (("dpo", "input_ids"), ("inspo", "inspo_input_ids")):
            result[f"{name}_batch_shape"] = list(batches[name][key].shape)
        result["token_work_ratio"] = token_work(batches["dpo"], batches["inspo"], 3)
        result["token_work_ratio_gc"] = token_work(batches["dpo"], batches["inspo"], 4)
        for gc_on in checkpointing:
            if gc_on:
                policy.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                policy.gradient_checkpointing_disable()
            suffix = "_gc" if gc_on else ""
            for mode in MODES:
                trainer, inputs = trainers[mode], batches[mode]
                row = timed_steps(trainer, policy, inputs, warmup, repeats)
                with count_reference_forwards(policy, reference) as counted:
                    row["saved_bytes"] = saved_bytes(trainer, policy, inputs, exclude=frozen)
                result[f"{mode}_ref_forwards_per_step"] = counted()
                result[f"{mode}{suffix}"] = row
            for key in ("median_s", "peak_gib", "step_gib", "saved_bytes"):
                result[f"inspo_over_dpo_{key}{suffix}"] = _ratio(
                    result[f"inspo{suffix}"][key], result[f"dpo{suffix}"][key]
                )
        policy.gradient_checkpointing_disable()
        del trainers, batches
    if count_refs:
        result["ref_forwards_with_precompute"] = reference_forwards(
            "inspo", policy, reference, tokenizer, dataset, case.pairs, precompute=True
        )
    del policy, reference
    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


# -- report ----------------------------------------------------------------------------------------


def headline(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary keys; over several cases each ratio is the largest (the worst case)."""

    def worst(key: str) -> float | None:
        values = [r[key] for r in results if r.get(key) is not None]
        return max(values) if values else None

    summary: dict[str, Any] = {
        "inspo_over_dpo_step_time": worst("inspo_over_dpo_median_s"),
        "inspo_over_dpo_step_time_gc": worst("inspo_over_dpo_median_s_gc"),
        "token_work_ratio": worst("token_work_ratio"),
        "token_work_ratio_gc": worst("token_work_ratio_gc"),
        "inspo_over_dpo_saved_bytes": worst("inspo_over_dpo_saved_bytes"),
        "inspo_over_dpo_saved_bytes_gc": worst("inspo_over_dpo_saved_bytes_gc"),
        "inspo_over_dpo_peak_mem": worst("inspo_over_dpo_peak_gib"),
        "inspo_over_dpo_peak_mem_gc": worst("inspo_over_dpo_peak_gib_gc"),
        "ref_forwards_with_precompute": worst("ref_forwards_with_precompute"),
        "ref_forwards_per_step": worst("inspo_ref_forwards_per_step"),
        "cases": [r["case"] for r in results],
    }
    summary["targets"] = check_targets(results)
    return summary


def check_targets(results: list[dict[str, Any]]) -> dict[str, bool | None]:
    """Whether every case meets each of :data:`TARGETS` (``None`` when not measured)."""

    def all_meet(values: list[bool | None]) -> bool | None:
        known = [v for v in values if v is not None]
        return all(known) if known else None

    def at_most(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    out: dict[str, bool | None] = {
        "saved_bytes_gc<=1.0": all_meet(
            [at_most(r.get("inspo_over_dpo_saved_bytes_gc"), TARGETS["saved_bytes_gc"]) for r in results]
        ),
        "saved_bytes<=1.2": all_meet(
            [at_most(r.get("inspo_over_dpo_saved_bytes"), TARGETS["saved_bytes"]) for r in results]
        ),
        "step_time<=1.1*token_work": all_meet(
            [
                at_most(
                    r.get("inspo_over_dpo_median_s"),
                    TARGETS["step_time_over_token_work"] * r["token_work_ratio"],
                )
                for r in results
            ]
        ),
        "ref_forwards_with_precompute==0": all_meet(
            [
                None
                if r.get("ref_forwards_with_precompute") is None
                else r["ref_forwards_with_precompute"] == 0
                for r in results
            ]
        ),
    }
    return out


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def print_case(r: dict[str, Any]) -> None:
    print(
        f"\n{r['case']} ({r['params_m']:.0f}M params, {r['device']}, {r['dtype']}): "
        f"DPO batch {r['dpo_batch_shape']}, InSPO batch {r['inspo_batch_shape']}; "
        f"token-work ratio {r['token_work_ratio']:.2f} (GC {r['token_work_ratio_gc']:.2f})"
    )
    print(
        f"  {'mode':10} {'GC':3} {'step s':>8} {'× dpo':>6} {'saved MiB':>10} {'× dpo':>6} {'peak GiB':>9} {'× dpo':>6}"
    )
    for suffix in ("", "_gc"):
        if f"dpo{suffix}" not in r:
            continue
        for mode in MODES:
            m = r[f"{mode}{suffix}"]
            same = mode == "dpo"
            print(
                f"  {mode:10} {'on' if suffix else 'off':3} {m['median_s']:8.3f} "
                f"{1.0 if same else r[f'inspo_over_dpo_median_s{suffix}']:6.2f} "
                f"{m['saved_bytes'] / 2**20:10.1f} "
                f"{1.0 if same else r[f'inspo_over_dpo_saved_bytes{suffix}']:6.2f} "
                f"{_fmt(m['peak_gib'], '9.2f')} "
                f"{_fmt(1.0 if same and m['peak_gib'] is not None else r[f'inspo_over_dpo_peak_gib{suffix}'], '6.2f')}"
            )
    print(
        f"  reference forwards per step: dpo {r['dpo_ref_forwards_per_step']}, "
        f"inspo {r['inspo_ref_forwards_per_step']}; InSPO with precompute_ref_log_probs, "
        f"in 2 training steps: {r.get('ref_forwards_with_precompute', '-')}"
    )


def write_json(
    path: str, args: dict[str, Any], summary: dict[str, Any], results: list[dict[str, Any]]
) -> None:
    import transformers
    import trl

    versions = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__}
    settings = {k: [str(c) for c in v] if k == "case" else v for k, v in args.items()}
    with open(path, "w") as fh:
        json.dump(
            {"versions": versions, "args": settings, "summary": summary, "cases": results}, fh, indent=2
        )


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--case",
        type=Case.parse,
        action="append",
        help="SIZE:BxPxR, repeatable (default 1b:4x128x256 on CUDA, tiny:2x64x128 on CPU)",
    )
    parser.add_argument("--quick", action="store_true", help=f"CPU check: --case {QUICK_CASE} --device cpu")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--gc", choices=["both", "on", "off"], default="both", help="gradient checkpointing")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps (default 2 on CUDA, 1 on CPU)"
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed steps (default 5 on CUDA, 3 on CPU)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--json", default=None, help="also write the full results here")
    args = parser.parse_args(argv)
    if args.quick:
        args.device = "cpu"
        args.case = args.case or [Case.parse(QUICK_CASE)]
    cuda = args.device.startswith("cuda")
    cases = args.case or [Case.parse("1b:4x128x256" if cuda else "tiny:2x64x128")]
    warmup = args.warmup if args.warmup is not None else (2 if cuda else 1)
    repeats = args.repeats if args.repeats is not None else (5 if cuda else 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    checkpointing = {"both": (False, True), "on": (True,), "off": (False,)}[args.gc]

    import datasets
    import transformers
    import trl

    datasets.disable_progress_bars()
    os.environ.setdefault("TQDM_DISABLE", "1")  # TRL's reference-precompute progress bar

    print(f"torch {torch.__version__}, transformers {transformers.__version__}, trl {trl.__version__}")
    results: list[dict[str, Any]] = []
    for case in cases:
        results.append(measure_case(case, args.device, dtype, warmup, repeats, checkpointing))
        print_case(results[-1])
        summary = headline(results)
        if args.json:  # after every case, so a run cut short keeps what it measured
            write_json(args.json, vars(args), summary, results)
    verdicts = (
        f"{name} {'PASS' if ok else 'FAIL' if ok is not None else 'n/a'}"
        for name, ok in summary["targets"].items()
    )
    print("\ntargets: " + ", ".join(verdicts))
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
