"""InSPOTrainer on a tiny model: log-prob extraction, padding, direction of every objective, training."""

from __future__ import annotations

import copy
import json
import math
import random

import pytest
import torch
from datasets import Dataset

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.layout import layout_row
from inspo_plugin.core.logprobs import segment_logps, split_policy_logps, token_logps
from inspo_plugin.core.objectives import OBJECTIVES, ReferenceLogps, inspo_loss
from inspo_plugin.core.sequences import Segment, make_reflection_format, tokenize_preference_row
from inspo_plugin.models.tiny import build_tiny_model, build_tiny_tokenizer
from inspo_plugin.options import InSPOOptions

WORDS = [
    "sun",
    "river",
    "stone",
    "cloud",
    "apple",
    "tiger",
    "music",
    "paper",
    "window",
    "garden",
    "bread",
    "silver",
    "candle",
    "forest",
    "ocean",
]


def _sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)) + "."


def lowercase_task(n: int, seed: int) -> list[dict]:
    """Prompt asks for a sentence; chosen is lowercase, rejected the same sentence in capitals."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = _sentence(rng, rng.randint(3, 6))
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Write sentence {i} about {rng.choice(WORDS)}."}],
                "chosen": [{"role": "assistant", "content": text}],
                "rejected": [{"role": "assistant", "content": text.upper()}],
            }
        )
    return rows


def _examples(tokenizer, rows, template="revise"):
    fmt = make_reflection_format(tokenizer, template)
    out = []
    for row in rows:
        t = tokenize_preference_row(tokenizer, row)
        out.append(layout_row(t["prompt_ids"], t["chosen_ids"], t["rejected_ids"], fmt))
    return out


def _forward_policy(model, batch):
    logits = model(input_ids=batch["inspo_input_ids"], attention_mask=batch["inspo_attention_mask"]).logits
    seg = segment_logps(token_logps(logits, batch["inspo_input_ids"]), batch["inspo_segment_ids"])
    return split_policy_logps(seg)


def _standalone_logp(model, prompt_ids, response_ids) -> float:
    """Independent computation: unpadded x·y, full log-softmax, sum over the response tokens."""
    ids = torch.tensor([prompt_ids + response_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
    return sum(logp[len(prompt_ids) + j - 1, tok].item() for j, tok in enumerate(response_ids))


@pytest.mark.parametrize("family", ["chatml", "llama3"])
def test_all_four_logps_equal_standalone_sequences(family):
    """All four log-probs from one forward over [A; B] equal those of separate, unpadded sequences.

    Computed in float64 so that the comparison tests the layout (causality, masks, boundaries), not
    rounding: segment 1 must equal x·y, segment 2 must equal x·y'·bridge·y.
    """
    tok = build_tiny_tokenizer(family)  # llama3: pad == eos, the case a `ids != pad` mask gets wrong
    model = build_tiny_model(tok, family, seed=1).double().eval()
    rows = lowercase_task(4, seed=0)
    examples = _examples(tok, rows)
    batch = DataCollatorForReflectivePreference(pad_token_id=tok.pad_token_id)(examples)
    with torch.no_grad():
        policy, chosen_len, rejected_len = _forward_policy(model, batch)
    for i, ex in enumerate(examples):
        p, c, r = ex["prompt_ids"], ex["chosen_ids"], ex["rejected_ids"]
        assert policy.chosen[i].item() == pytest.approx(_standalone_logp(model, p, c), abs=1e-8)
        assert policy.rejected[i].item() == pytest.approx(_standalone_logp(model, p, r), abs=1e-8)
        # What precedes the second answer: x · first answer · bridge.
        after_chosen = ex["inspo_ids_a"][: ex["inspo_segments_a"].index(Segment.SECOND)]
        after_rejected = ex["inspo_ids_b"][: ex["inspo_segments_b"].index(Segment.SECOND)]
        assert after_chosen[: len(p) + len(c)] == p + c and after_rejected[: len(p) + len(r)] == p + r
        assert policy.rejected_cond[i].item() == pytest.approx(
            _standalone_logp(model, after_chosen, r), abs=1e-8
        )
        assert policy.chosen_cond[i].item() == pytest.approx(
            _standalone_logp(model, after_rejected, c), abs=1e-8
        )
        assert (chosen_len[i].item(), rejected_len[i].item()) == (len(c), len(r))
    if family == "llama3":
        eos = tok.eos_token_id
        assert tok.pad_token_id == eos
        # The EOS closing the first answer is attended to (mask from lengths, not from ids != pad).
        a0 = batch["inspo_input_ids"][0]
        eos_positions = (a0 == eos).nonzero().flatten()
        assert len(eos_positions) >= 2 and batch["inspo_attention_mask"][0, eos_positions].all()


def test_segment_one_equals_trl_dpo_logps_in_fp32(chatml_tokenizer, chatml_model):
    """In fp32, segment 1 matches TRL's own DPO log-probs of the plain pairs within 1e-5."""
    from trl.trainer.dpo_trainer import DataCollatorForPreference
    from trl.trainer.utils import selective_log_softmax

    examples = _examples(chatml_tokenizer, lowercase_task(4, seed=5))
    batch = DataCollatorForReflectivePreference(pad_token_id=chatml_tokenizer.pad_token_id)(examples)
    batch.update(DataCollatorForPreference(pad_token_id=chatml_tokenizer.pad_token_id)(examples))
    with torch.no_grad():
        policy, _, _ = _forward_policy(chatml_model, batch)
        # TRL DPOTrainer._compute_loss: one forward over [chosen; rejected], gather, sum over completion.
        logits = chatml_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        per_token = selective_log_softmax(logits[:, :-1], batch["input_ids"][:, 1:])
        dpo = (per_token * batch["completion_mask"][:, 1:]).sum(-1)
    dpo_chosen, dpo_rejected = dpo.chunk(2)
    assert torch.allclose(policy.chosen, dpo_chosen, atol=1e-5, rtol=0)
    assert torch.allclose(policy.rejected, dpo_rejected, atol=1e-5, rtol=0)


def test_micro_batch_one_and_four_give_the_same_per_pair_losses(chatml_tokenizer, chatml_model):
    rows = lowercase_task(4, seed=3)
    rows[1]["chosen"][0]["content"] += " " + " ".join(WORDS)  # very different lengths → real padding
    examples = _examples(chatml_tokenizer, rows)
    collate = DataCollatorForReflectivePreference(pad_token_id=chatml_tokenizer.pad_token_id)
    cfg = InSPOOptions(loss_type="sigmoid", beta=0.5)
    with torch.no_grad():
        ref = copy.deepcopy(chatml_model)

        def losses(batch):
            policy, lw, ll = _forward_policy(chatml_model, batch)
            r, _, _ = _forward_policy(ref, batch)
            return inspo_loss(policy, ReferenceLogps(r.chosen * 1.01, r.rejected), lw, ll, cfg).losses

        together = losses(collate(examples))
        alone = torch.cat([losses(collate([ex])) for ex in examples])
    assert torch.allclose(together, alone, atol=1e-5)


def _direction_rows():
    # Equal-length answers keep length-normalised objectives (SimPO, ORPO) first-order aligned with the margin.
    rng = random.Random(7)
    rows = []
    for i in range(4):
        words = [rng.choice(WORDS) for _ in range(5)]
        rows.append(
            {
                "prompt": [{"role": "user", "content": f"Say something {i}."}],
                "chosen": [{"role": "assistant", "content": " ".join(words)}],
                "rejected": [{"role": "assistant", "content": " ".join(reversed(words)).upper()}],
            }
        )
    return rows


@pytest.mark.parametrize("loss_type", list(OBJECTIVES))
def test_one_step_moves_probability_towards_the_chosen_response(loss_type, chatml_tokenizer):
    """Catches sign errors: one gradient step must raise the conditional margin Δ_w − Δ_l."""
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=2)
    reference = copy.deepcopy(model).eval()
    model.eval()  # no dropout; gradients still flow
    batch = DataCollatorForReflectivePreference(pad_token_id=chatml_tokenizer.pad_token_id)(
        _examples(chatml_tokenizer, _direction_rows())
    )
    cfg = InSPOOptions(loss_type=loss_type, beta=0.1, ipo_tau=0.1)
    with torch.no_grad():
        ref_policy, _, _ = _forward_policy(reference, batch)
    ref = ReferenceLogps(ref_policy.chosen, ref_policy.rejected)

    def step_metrics(step: bool) -> dict[str, float]:
        policy, lw, ll = _forward_policy(model, batch)
        out = inspo_loss(policy, ref, lw, ll, cfg)
        if step:
            model.zero_grad()
            out.losses.mean().backward()
            with torch.no_grad():
                for p in model.parameters():
                    p -= 0.02 * p.grad
        return {k: v.mean().item() for k, v in out.metrics.items()}

    before = step_metrics(step=True)
    after = step_metrics(step=False)
    assert after["inspo/margin_cond"] > before["inspo/margin_cond"] + 1e-4, (before, after)


def test_uncond_weight_also_raises_the_deployed_margin(chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=4)
    reference = copy.deepcopy(model).eval()
    batch = DataCollatorForReflectivePreference(pad_token_id=chatml_tokenizer.pad_token_id)(
        _examples(chatml_tokenizer, _direction_rows())
    )
    with torch.no_grad():
        r, _, _ = _forward_policy(reference, batch)
    ref = ReferenceLogps(r.chosen, r.rejected)
    cfg = InSPOOptions(loss_type="sigmoid", uncond_weight=1.0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02)
    margins = []
    for _ in range(2):
        policy, lw, ll = _forward_policy(model, batch)
        out = inspo_loss(policy, ref, lw, ll, cfg)
        margins.append(
            (out.metrics["inspo/margin_cond"].mean().item(), out.metrics["inspo/margin_uncond"].mean().item())
        )
        optimizer.zero_grad()
        out.losses.mean().backward()
        optimizer.step()
    assert margins[1][0] > margins[0][0] and margins[1][1] > margins[0][1] + 1e-4


# --- the trainer -------------------------------------------------------------------------------


def tiny_config(tmp_path, **overrides) -> InSPOConfig:
    """Training arguments for a tiny model: a few CPU steps, every step logged, nothing saved."""
    values = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        per_device_eval_batch_size=8,
        max_steps=2,
        logging_steps=1,
        report_to=[],
        learning_rate=5e-3,
        max_length=512,
        save_strategy="no",
        use_cpu=True,
        seed=0,
    )
    values.update(overrides)
    return InSPOConfig(**values)


def _trainer(tmp_path, tokenizer, rows, ref=True, eval_rows=None, **config):
    model = build_tiny_model(tokenizer, "chatml", seed=0)
    kwargs = {}
    if ref and not config.get("precompute_ref_log_probs"):
        kwargs["ref_model"] = copy.deepcopy(model)
    return InSPOTrainer(
        model=model,
        args=tiny_config(tmp_path, **{"dataset_num_proc": None, **config}),
        train_dataset=Dataset.from_list(rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        **kwargs,
    )


def _first_log(trainer) -> dict:
    return next(h for h in trainer.state.log_history if "inspo/margin_cond" in h)


def test_thirty_steps_lift_held_out_deployed_accuracy(tmp_path, chatml_tokenizer):
    trainer = _trainer(
        tmp_path,
        chatml_tokenizer,
        lowercase_task(120, seed=10),
        eval_rows=lowercase_task(32, seed=99),
        max_steps=30,
        learning_rate=2e-3,
        beta=0.5,
    )
    before = trainer.evaluate()
    trainer.train()
    after = trainer.evaluate()
    assert before["eval_inspo/acc_uncond"] < 0.75  # the random model has no preference yet
    assert after["eval_inspo/acc_uncond"] >= 0.9
    assert after["eval_inspo/margin_uncond"] > before["eval_inspo/margin_uncond"] + 1.0
    assert after["eval_inspo/acc_cond"] >= 0.9


def test_grad_accumulation_checkpointing_and_precomputed_reference(tmp_path, chatml_tokenizer):
    trainer = _trainer(
        tmp_path,
        chatml_tokenizer,
        lowercase_task(16, seed=1),
        ref=False,
        precompute_ref_log_probs=True,
        gradient_accumulation_steps=2,
        gradient_checkpointing=True,
        per_device_train_batch_size=2,
    )
    assert "ref_chosen_logps" in trainer.train_dataset.column_names
    trainer.train()
    logs = [h for h in trainer.state.log_history if "inspo/margin_uncond" in h]
    # Before any update the policy is the reference, so the deployed (DPO) margin is zero up to fp32
    # rounding (the reference was computed in other batches, with other padding); after one update it moves.
    assert abs(logs[0]["inspo/margin_uncond"]) < 1e-2
    assert logs[1]["inspo/margin_uncond"] > 0.1
    assert all(math.isfinite(v) for k, v in logs[0].items() if k.startswith("inspo/"))
    assert trainer.state.global_step == 2


def test_lora_uses_the_base_model_as_reference(tmp_path, chatml_tokenizer):
    from peft import LoraConfig

    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    args = InSPOConfig(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=2,
        logging_steps=1,
        report_to=[],
        learning_rate=5e-3,
        save_strategy="no",
        use_cpu=True,
        max_length=512,
    )
    trainer = InSPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(lowercase_task(8, seed=2)),
        processing_class=chatml_tokenizer,
        peft_config=LoraConfig(r=4, target_modules=["q_proj", "v_proj"]),
    )
    assert trainer.ref_model is None
    trainer.train()
    logs = [h for h in trainer.state.log_history if "inspo/margin_uncond" in h]
    assert logs[0]["inspo/margin_uncond"] == pytest.approx(0.0, abs=1e-4)  # LoRA starts as the identity
    assert logs[1]["inspo/margin_uncond"] != pytest.approx(0.0, abs=1e-4)


def test_conditional_reference_ablation(tmp_path, chatml_tokenizer):
    trainer = _trainer(
        tmp_path, chatml_tokenizer, lowercase_task(8, seed=4), reference="conditional", max_steps=1
    )
    trainer.train()
    first = _first_log(trainer)
    # π_ref(y|x,y') equals π_θ(y|x,y') before the first update, so the conditional margin starts at zero.
    assert first["inspo/margin_cond"] == pytest.approx(0.0, abs=1e-4)
    assert first["inspo/context_chosen"] != pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("template", ["revise", "concat"])
def test_logged_metrics_are_finite_and_named(tmp_path, chatml_tokenizer, template):
    trainer = _trainer(tmp_path, chatml_tokenizer, lowercase_task(8, seed=5), template=template, max_steps=1)
    trainer.train()
    first = _first_log(trainer)
    for name in (
        "inspo/margin_cond",
        "inspo/acc_cond",
        "inspo/margin_uncond",
        "inspo/acc_uncond",
        "inspo/context_chosen",
        "inspo/context_rejected",
        "inspo/loss_cond",
    ):
        assert math.isfinite(first[name]), name


# --- bad input -----------------------------------------------------------------------------------


def _string_rows(n: int) -> list[dict]:
    return [
        {"prompt": f"Question {i}?", "chosen": f"good answer {i}", "rejected": f"BAD ANSWER {i}"}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"prompt": None, "chosen": "a", "rejected": "b"}, "field 'prompt': missing"),
        ({"prompt": "p", "chosen": "   ", "rejected": "b"}, "field 'chosen': empty"),
        (
            {"prompt": "p", "chosen": "same answer", "rejected": "same answer "},
            "field 'rejected': identical to chosen",
        ),
    ],
)
def test_invalid_row_is_an_error_naming_row_and_field(tmp_path, chatml_tokenizer, bad, message):
    rows = _string_rows(3)
    rows.insert(2, bad)
    with pytest.raises(ValueError, match=rf"train: row 2, {message}.*on_invalid_row: skip"):
        _trainer(tmp_path, chatml_tokenizer, rows)


def test_skip_mode_counts_and_reports_every_dropped_row(tmp_path, chatml_tokenizer):
    rows = _string_rows(6)
    rows[1] = {"prompt": "p", "chosen": "", "rejected": "b"}
    rows[4] = {"prompt": "p", "chosen": "x", "rejected": "x"}
    rows.append({"prompt": "long " * 600, "chosen": "a", "rejected": "b"})  # prompt alone exceeds max_length
    trainer = _trainer(tmp_path, chatml_tokenizer, rows, on_invalid_row="skip", max_length=256)
    report = trainer.drop_reports["train"]
    assert report.rows_in == 7
    assert sorted(row for row, _ in report.dropped) == [1, 4, 6]
    reasons = dict(report.dropped)
    assert reasons[1].startswith("invalid:") and "field 'chosen': empty" in reasons[1]
    assert "identical to chosen" in reasons[4]
    assert reasons[6].startswith("too long:")
    assert len(trainer.train_dataset) == 4
    written = (tmp_path / "out" / "inspo_dropped_rows_train.jsonl").read_text().splitlines()
    assert [json.loads(line)["row"] for line in written] == [1, 4, 6]
    assert "dropped 3 of 7 rows" in report.summary()


def test_unknown_loss_type_or_template_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="loss_type: 'kto' is not one of sigmoid, one_sided"):
        InSPOConfig(output_dir=str(tmp_path), loss_type="kto")
    with pytest.raises(ValueError, match="template: 'mirror' is not one of revise, concat, custom"):
        InSPOConfig(output_dir=str(tmp_path), template="mirror")
    with pytest.raises(ValueError, match="on_invalid_row"):
        InSPOConfig(output_dir=str(tmp_path), on_invalid_row="ignore")
