"""Cost of one InSPO training step against one DPO step, same model, same pairs, same run.

Three ways to get the log-probs of a batch of pairs (random-initialised Llama of a chosen size,
synthetic token ids, so nothing is downloaded):

- ``dpo``: one policy forward+backward over [x·y_w; x·y_l] and one reference forward (standard DPO);
- ``inspo``: one policy forward+backward over the reflective sequences [A; B] (all four log-probs) and
  the same reference forward over the plain pairs — what ``InSPOTrainer`` does;
- ``inspo-separate``: the conditional and unconditional log-probs from four separate policy
  forwards (x·y_w, x·y_l, x·y_l·br·y_w, x·y_w·br·y_l), as a straightforward implementation would.

Prints the median step time and peak memory of each, and their ratios to ``dpo``. Speed claims are
ratios measured in one run, never absolute timings across machines::

    python bench/step_cost.py --size tiny --device cpu              # a few seconds on 2 cores
    python bench/step_cost.py --size 1b --device cuda --dtype bf16  # on a GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import torch

from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.layout import pair_columns
from inspo_plugin.core.logprobs import segment_logps, split_policy_logps, token_logps
from inspo_plugin.core.objectives import PolicyLogps, ReferenceLogps, inspo_loss
from inspo_plugin.core.sequences import ReflectivePair
from inspo_plugin.options import InSPOOptions

SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(
        hidden_size=128,
        intermediate_size=384,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=4096,
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
    ),
}


def make_examples(
    n: int, prompt_len: int, response_len: int, bridge_len: int, vocab: int, seed: int
) -> list[dict]:
    g = torch.Generator().manual_seed(seed)

    def ids(k: int) -> list[int]:
        return torch.randint(10, vocab, (k,), generator=g).tolist()

    bridge = ids(bridge_len)
    pairs = [
        ReflectivePair(ids(prompt_len), ids(response_len), ids(response_len - 8), bridge, bridge)
        for _ in range(n)
    ]
    return [{**pair_columns(pair), "bridge": bridge} for pair in pairs]


def plain_logps(model: Any, examples: list[dict], device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """DPO's log-probs: one forward over [x·y_w; x·y_l]."""
    seqs = [e["prompt_ids"] + e[key] for key in ("chosen_ids", "rejected_ids") for e in examples]
    starts = [len(e["prompt_ids"]) for _ in range(2) for e in examples]
    chosen, rejected = sequences_logps(model, seqs, starts, device).chunk(2)
    return chosen, rejected


def sequences_logps(model: Any, seqs: list[list[int]], scored_from: list[int], device: str) -> torch.Tensor:
    """Summed log-probs of the tokens from position ``scored_from[i]`` on, one padded forward."""
    length = max(len(s) for s in seqs)
    ids = torch.zeros(len(seqs), length, dtype=torch.long)
    mask = torch.zeros_like(ids)
    target = torch.zeros_like(ids)
    for i, (s, start) in enumerate(zip(seqs, scored_from, strict=True)):
        ids[i, : len(s)] = torch.tensor(s)
        mask[i, : len(s)] = 1
        target[i, start : len(s)] = 1
    ids, mask, target = ids.to(device), mask.to(device), target.to(device)
    per_token = token_logps(model(input_ids=ids, attention_mask=mask).logits, ids)
    return (per_token * target[:, 1:]).sum(-1)


def step(mode: str, policy: Any, reference: Any, examples: list[dict], batch: dict, device: str) -> None:
    cfg = InSPOOptions(beta=0.1)
    with torch.no_grad():
        ref_c, ref_r = plain_logps(reference, examples, device)
    ref = ReferenceLogps(ref_c, ref_r)
    if mode == "dpo":
        c, r = plain_logps(policy, examples, device)
        loss = -torch.nn.functional.logsigmoid(0.1 * ((c - ref_c) - (r - ref_r))).mean()
    elif mode == "inspo":
        logits = policy(
            input_ids=batch["inspo_input_ids"], attention_mask=batch["inspo_attention_mask"]
        ).logits
        seg = segment_logps(token_logps(logits, batch["inspo_input_ids"]), batch["inspo_segment_ids"])
        pol, lw, ll = split_policy_logps(seg)
        loss = inspo_loss(pol, ref, lw, ll, cfg).losses.mean()
    else:  # four separate forwards
        p = [e["prompt_ids"] for e in examples]
        c_ids = [e["chosen_ids"] for e in examples]
        r_ids = [e["rejected_ids"] for e in examples]
        br = [e["bridge"] for e in examples]
        chosen = sequences_logps(
            policy, [a + b for a, b in zip(p, c_ids, strict=True)], [len(a) for a in p], device
        )
        rejected = sequences_logps(
            policy, [a + b for a, b in zip(p, r_ids, strict=True)], [len(a) for a in p], device
        )
        seq = [a + r + b + c for a, r, b, c in zip(p, r_ids, br, c_ids, strict=True)]
        chosen_cond = sequences_logps(
            policy, seq, [len(s) - len(c) for s, c in zip(seq, c_ids, strict=True)], device
        )
        seq = [a + c + b + r for a, c, b, r in zip(p, c_ids, br, r_ids, strict=True)]
        rejected_cond = sequences_logps(
            policy, seq, [len(s) - len(r) for s, r in zip(seq, r_ids, strict=True)], device
        )
        lw = torch.tensor([len(c) for c in c_ids], device=device)
        ll = torch.tensor([len(r) for r in r_ids], device=device)
        loss = inspo_loss(
            PolicyLogps(chosen, rejected, chosen_cond, rejected_cond), ref, lw, ll, cfg
        ).losses.mean()
    loss.backward()
    policy.zero_grad(set_to_none=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", choices=sorted(SIZES), default="tiny")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--pairs", type=int, default=4, help="pairs per micro-batch")
    parser.add_argument("--prompt-len", type=int, default=128)
    parser.add_argument("--response-len", type=int, default=256)
    parser.add_argument("--bridge-len", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    from transformers import LlamaConfig, LlamaForCausalLM

    dtype = torch.bfloat16 if args.dtype == "bf16" else torch.float32
    torch.manual_seed(0)
    config = LlamaConfig(**SIZES[args.size], max_position_embeddings=4096)
    policy = LlamaForCausalLM(config).to(device=args.device, dtype=dtype)
    reference = LlamaForCausalLM(config).to(device=args.device, dtype=dtype).eval()
    examples = make_examples(
        args.pairs, args.prompt_len, args.response_len, args.bridge_len, config.vocab_size, 0
    )
    batch = {
        k: v.to(args.device) for k, v in DataCollatorForReflectivePreference(pad_token_id=0)(examples).items()
    }

    results: dict[str, dict[str, float]] = {}
    for mode in ("dpo", "inspo", "inspo-separate"):
        step(mode, policy, reference, examples, batch, args.device)  # warm-up
        times = []
        if args.device.startswith("cuda"):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        for _ in range(args.repeats):
            start = time.perf_counter()
            step(mode, policy, reference, examples, batch, args.device)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - start)
        peak = torch.cuda.max_memory_allocated() / 2**30 if args.device.startswith("cuda") else float("nan")
        results[mode] = {"median_s": statistics.median(times), "peak_gib": peak}

    base = results["dpo"]
    print(
        f"model {args.size} ({sum(p.numel() for p in policy.parameters()) / 1e6:.0f}M params), {args.device}, "
        f"{args.dtype}; {args.pairs} pairs of prompt {args.prompt_len} + responses {args.response_len} tokens"
    )
    print(f"{'mode':16} {'step (s)':>10} {'× dpo':>7} {'peak GiB':>9} {'× dpo':>7}")
    for mode, r in results.items():
        mem_ratio = r["peak_gib"] / base["peak_gib"] if base["peak_gib"] == base["peak_gib"] else float("nan")
        print(
            f"{mode:16} {r['median_s']:10.3f} {r['median_s'] / base['median_s']:7.2f} {r['peak_gib']:9.2f} "
            f"{mem_ratio:7.2f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
