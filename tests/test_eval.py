"""Evaluation: preference accuracy and margins, the report, the eval command."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from inspo_plugin.cli import main
from inspo_plugin.core.sequences import Segment
from inspo_plugin.evaluation.preference import pair_logps, preference_metrics, prepare_rows
from inspo_plugin.evaluation.report import evaluate_checkpoint, markdown_table, write_report
from inspo_plugin.models.tiny import build_tiny_model

ROWS = [
    {
        "prompt": f"Describe item {i} in lowercase. Answer in lowercase letters only.",
        "chosen": f"item {i} is small and round.",
        "rejected": f"ITEM {i} IS SMALL AND ROUND.",
        "constraint": {"kind": "lowercase", "params": {}},
        "heldout": "prompt" if i % 2 else "constraint",
    }
    for i in range(6)
]


def _naive_logp(model, ids_prompt, ids_response) -> float:
    ids = torch.tensor([ids_prompt + ids_response])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), -1)
    return sum(logp[len(ids_prompt) + j - 1, t].item() for j, t in enumerate(ids_response))


def _bridge(example, sequence, first_end):
    """The bridge of sequence A or B: the tokens between the first answer and the second one."""
    ids, segments = example[f"inspo_ids_{sequence}"], example[f"inspo_segments_{sequence}"]
    second = segments.index(Segment.SECOND)
    assert set(segments[first_end:second]) == {Segment.BRIDGE}
    return ids[first_end:second]


def test_preference_metrics_match_an_independent_computation(chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=3).double().eval()
    reference = build_tiny_model(chatml_tokenizer, "chatml", seed=4).double().eval()
    result = preference_metrics(model, reference, chatml_tokenizer, ROWS, n_resamples=200)
    examples, skipped = prepare_rows(chatml_tokenizer, ROWS)
    assert not skipped and result["n_pairs"] == len(ROWS)
    margins_uncond, margins_cond = [], []
    for ex in examples:
        p, c, r = ex["prompt_ids"], ex["chosen_ids"], ex["rejected_ids"]
        ref_c, ref_r = _naive_logp(reference, p, c), _naive_logp(reference, p, r)
        margins_uncond.append((_naive_logp(model, p, c) - ref_c) - (_naive_logp(model, p, r) - ref_r))
        cond_c = _naive_logp(model, p + r + _bridge(ex, "b", len(p) + len(r)), c)
        cond_r = _naive_logp(model, p + c + _bridge(ex, "a", len(p) + len(c)), r)
        margins_cond.append((cond_c - ref_c) - (cond_r - ref_r))
    assert result["margin_uncond"]["mean"] == pytest.approx(sum(margins_uncond) / len(ROWS), abs=1e-6)
    assert result["margin_cond"]["mean"] == pytest.approx(sum(margins_cond) / len(ROWS), abs=1e-6)
    assert result["acc_uncond"]["mean"] == pytest.approx(sum(m > 0 for m in margins_uncond) / len(ROWS))
    for key in ("acc_uncond", "margin_uncond", "acc_cond", "margin_cond"):
        assert result[key]["ci_low"] <= result[key]["mean"] <= result[key]["ci_high"]


def test_a_model_against_itself_has_zero_deployed_margin(chatml_tokenizer, chatml_model):
    result = preference_metrics(
        chatml_model, copy.deepcopy(chatml_model), chatml_tokenizer, ROWS, n_resamples=100
    )
    assert result["margin_uncond"]["mean"] == pytest.approx(0.0, abs=1e-4)
    assert result["acc_uncond"]["mean"] == 0.0


def test_pair_logps_batches_agree(chatml_tokenizer, chatml_model):
    examples, _ = prepare_rows(chatml_tokenizer, ROWS)
    one = pair_logps(chatml_model, chatml_tokenizer, examples, batch_size=1)
    many = pair_logps(chatml_model, chatml_tokenizer, examples, batch_size=4)
    for key in one:
        assert torch.allclose(one[key], many[key], atol=1e-4)


def test_unusable_rows_are_counted(chatml_tokenizer):
    rows = [*ROWS, {"prompt": "x", "chosen": "same", "rejected": "same"}]
    _, skipped = prepare_rows(chatml_tokenizer, rows)
    assert [i for i, _ in skipped] == [6]


def test_evaluate_checkpoint_and_report(tmp_path, chatml_tokenizer):
    base = tmp_path / "base"
    tuned = tmp_path / "tuned"
    for path, seed in ((base, 0), (tuned, 1)):
        build_tiny_model(chatml_tokenizer, "chatml", seed=seed).save_pretrained(path)
        chatml_tokenizer.save_pretrained(path)
    before = evaluate_checkpoint(base, base, ROWS, generate=4, max_new_tokens=6, progress=lambda _: None)
    assert "preference" not in before and "win_rate" not in before["generation"]
    after = evaluate_checkpoint(
        tuned,
        base,
        ROWS,
        generate=4,
        max_new_tokens=6,
        reference_responses=before["responses"],
        progress=lambda _: None,
    )
    gen = after["generation"]
    assert gen["win_rate"]["n"] == 4 and set(gen["groups"]) == {"prompt", "constraint"}
    assert after["reference_responses"] == before["responses"]
    assert 0.0 <= after["preference"]["acc_uncond"]["mean"] <= 1.0
    # per-item values for paired comparisons agree with the summaries
    from inspo_plugin.evaluation.checkers import constraint_from_dict

    expected = [
        constraint_from_dict(r["constraint"]).check(a) for r, a in zip(ROWS, after["responses"], strict=False)
    ]
    assert after["passes"] == expected and len(before["passes"]) == 4
    assert sum(after["passes"]) / 4 == pytest.approx(gen["candidate"]["pass_rate"])
    margins = after["preference"]["per_pair"]["margin_uncond"]
    assert len(margins) == len(ROWS)
    assert sum(margins) / len(margins) == pytest.approx(after["preference"]["margin_uncond"]["mean"])
    assert sum(m > 0 for m in margins) / len(margins) == pytest.approx(
        after["preference"]["acc_uncond"]["mean"]
    )
    table = markdown_table({"base": before, "tuned": {**after, "train_seconds": 90}})
    assert table.count("\n") == 3 and "| base | — | — | — |" in table and "1.5 min" in table
    header, _, _, tuned_row = (line.split(" | ") for line in table.splitlines())
    short = [len(a.split()) <= 5 for a in after["responses"]]
    short_passed = sum(s and p for s, p in zip(short, after["passes"], strict=True))
    assert tuned_row[header.index("answers ≤ 5 words")] == f"{sum(short)} of 4 ({short_passed} pass)"
    paths = write_report({"base": before, "tuned": after}, tmp_path / "report", title="t")
    assert json.loads(paths["json"].read_text())["tuned"]["generation"]["win_rate"]["n"] == 4


@pytest.mark.slow
def test_eval_command_writes_json_markdown_and_plot(tmp_path, chatml_tokenizer, capsys):
    base = tmp_path / "base"
    build_tiny_model(chatml_tokenizer, "chatml", seed=0).save_pretrained(base)
    chatml_tokenizer.save_pretrained(base)
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    state = tmp_path / "trainer_state.json"
    history = [
        {"step": s, "loss": 0.7 - 0.01 * s, "inspo/margin_cond": 0.1 * s, "inspo/margin_uncond": 0.05 * s}
        for s in range(1, 6)
    ]
    state.write_text(json.dumps({"log_history": history}))
    out = tmp_path / "eval"
    code = main(
        [
            "eval",
            "--model",
            str(base),
            "--reference",
            str(base),
            "--data",
            str(data),
            "--generate",
            "3",
            "--max-new-tokens",
            "5",
            "--trainer-state",
            str(state),
            "--output-dir",
            str(out),
        ]
    )
    assert code == 0
    assert (out / "results.json").is_file() and (out / "results.md").is_file()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| base |" in capsys.readouterr().out


@pytest.mark.slow
def test_eval_command_with_a_pairwise_judge_on_a_local_stub(tmp_path, chatml_tokenizer):
    from tests.test_judge import Stub, completion

    for name, seed in (("base", 0), ("tuned", 1)):
        build_tiny_model(chatml_tokenizer, "chatml", seed=seed).save_pretrained(tmp_path / name)
        chatml_tokenizer.save_pretrained(tmp_path / name)
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in ROWS))
    stub = Stub()
    stub.respond = lambda body: (200, completion("A"))  # always the first position: no preference
    try:
        code = main(
            [
                "eval",
                "--model",
                str(tmp_path / "tuned"),
                "--reference",
                str(tmp_path / "base"),
                "--data",
                str(data),
                "--generate",
                "3",
                "--max-new-tokens",
                "4",
                "--judge-base-url",
                stub.base_url,
                "--judge-model",
                "judge-x",
                "--output-dir",
                str(tmp_path / "eval"),
            ]
        )
    finally:
        stub.close()
    assert code == 0
    judged = json.loads((tmp_path / "eval" / "results.json").read_text())["tuned"]["judge"]
    assert len(stub.requests) == 6 and stub.requests[0]["body"]["model"] == "judge-x"  # 3 prompts × 2 orders
    assert judged["n"] == 3 and judged["win_rate"] == 0.5 and judged["position_consistent"] == 0.0
