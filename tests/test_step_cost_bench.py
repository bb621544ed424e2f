"""bench/step_cost.py on a tiny case, in-process: the structure and sanity of what it reports."""

from __future__ import annotations

import math

import pytest
import torch

from inspo_plugin.core.sequences import DEFAULT_REFLECTION_PROMPT
from tests.bench_scripts import load_bench_module


@pytest.fixture(scope="module")
def bench():
    return load_bench_module("step_cost")


@pytest.fixture(scope="module")
def measured(bench):
    case = bench.Case.parse("tiny:2x8x12")
    return case, bench.measure_case(case, "cpu", torch.float32, warmup=0, repeats=1)


def test_case_parsing(bench):
    case = bench.Case.parse("1b:4x128x256")
    assert (case.size, case.pairs, case.prompt, case.answer) == ("1b", 4, 128, 256)
    assert str(case) == "1b 4×(128+2·256)"
    for bad in ("1b:4x128", "huge:1x2x3", "tiny:0x8x8"):
        with pytest.raises(Exception, match="--case"):
            bench.Case.parse(bad)


def test_batches_and_token_work_ratio(bench, measured):
    case, r = measured
    n = 2 * case.pairs
    # The plain pairs: prompt + answer (the answer's R tokens include TRL's EOS), no padding.
    dpo_len = case.prompt + case.answer
    assert r["dpo_batch_shape"] == [n, dpo_len]
    # The reflective sequences: prompt, answer, the ChatML reflection turn, the other answer.
    tokenizer = bench.build_tokenizer(bench.SIZES[case.size]["vocab_size"])
    bridge = "<|im_start|>user\n" + DEFAULT_REFLECTION_PROMPT + "<|im_end|>\n<|im_start|>assistant\n"
    bridge_len = len(tokenizer(bridge, add_special_tokens=False)["input_ids"])
    inspo_len = case.prompt + 2 * case.answer + bridge_len
    assert r["inspo_batch_shape"] == [n, inspo_len]
    # Policy forward+backward ≈ 3 forwards (4 with checkpointing), reference 1, over the plain pairs.
    assert r["token_work_ratio"] == pytest.approx((3 * inspo_len + dpo_len) / (4 * dpo_len))
    assert r["token_work_ratio_gc"] == pytest.approx((4 * inspo_len + dpo_len) / (5 * dpo_len))


def test_measurements_are_sane(bench, measured):
    _, r = measured
    for suffix in ("", "_gc"):
        for mode in bench.MODES:
            row = r[f"{mode}{suffix}"]
            assert row["median_s"] > 0
            assert row["saved_bytes"] > 0
            assert row["peak_gib"] is None  # CPU: no peak memory
        for key in ("median_s", "saved_bytes"):
            ratio = r[f"inspo_over_dpo_{key}{suffix}"]
            assert math.isfinite(ratio) and ratio > 0
    # Checkpointing keeps fewer activations for backward, in both trainers.
    for mode in bench.MODES:
        assert r[f"{mode}_gc"]["saved_bytes"] < r[mode]["saved_bytes"]


def test_reference_forwards_are_counted_by_hooks(measured):
    _, r = measured
    assert r["dpo_ref_forwards_per_step"] == 1  # no precompute: one reference forward per step
    assert r["inspo_ref_forwards_per_step"] == 1
    assert r["ref_forwards_with_precompute"] == 0


def test_headline_keys(bench, measured):
    _, r = measured
    summary = bench.headline([r])
    for key in (
        "inspo_over_dpo_step_time",
        "token_work_ratio",
        "inspo_over_dpo_saved_bytes",
        "inspo_over_dpo_saved_bytes_gc",
        "inspo_over_dpo_peak_mem",
        "ref_forwards_with_precompute",
    ):
        assert key in summary
    assert summary["inspo_over_dpo_peak_mem"] is None
    assert summary["token_work_ratio"] == r["token_work_ratio"]
    assert summary["targets"]["ref_forwards_with_precompute==0"] is True
    assert set(summary["targets"]) == {
        "saved_bytes_gc<=1.0",
        "saved_bytes<=1.2",
        "step_time<=1.1*token_work",
        "ref_forwards_with_precompute==0",
    }
