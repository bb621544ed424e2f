"""Non-finite training steps (option ``on_nonfinite``) and numerical range in bf16.

A NaN or Inf is injected into the loss (a forward hook on the output head) or into one gradient (a
tensor hook) at step 2 of a 3-step run, in fp32 and in bf16. ``stop`` must end the run naming the
step and the rows of its batch; ``skip`` must leave the weights and the optimizer state exactly as
they were after step 1, log the step with its rows, and train on at step 3.
"""

from __future__ import annotations

import copy
import logging
import math

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.core.objectives import OBJECTIVES, PolicyLogps, ReferenceLogps, inspo_loss
from inspo_plugin.models.tiny import build_tiny_model
from inspo_plugin.options import InSPOOptions, OptionError
from inspo_plugin.trl.nonfinite import SKIPPED_METRIC, NonFiniteStepError

BAD_STEP = 2  # 1-based, as logged


def _rows(n: int, answer_words: int = 4) -> list[dict]:
    return [
        {
            "prompt": f"Write sentence {i}.",
            "chosen": " ".join(["calm river"] * answer_words) + f" {i}.",
            "rejected": " ".join(["LOUD STONE"] * answer_words) + f" {i}!",
        }
        for i in range(n)
    ]


def _trainer(tmp_path, tokenizer, dtype: torch.dtype, rows: list[dict], **config) -> InSPOTrainer:
    model = build_tiny_model(tokenizer, "chatml", seed=0).to(dtype)
    values = dict(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=4,
        max_steps=3,
        logging_steps=1,
        report_to=[],
        learning_rate=1e-2,
        max_length=512,
        save_strategy="no",
        use_cpu=True,
        seed=0,
        bf16=dtype == torch.bfloat16,
    )
    values.update(config)
    return InSPOTrainer(
        model=model,
        ref_model=copy.deepcopy(model),
        args=InSPOConfig(**values),
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
    )


class Snapshots(TrainerCallback):
    """Weights and optimizer state after each optimizer step."""

    def __init__(self) -> None:
        self.weights: dict[int, dict[str, torch.Tensor]] = {}
        self.optimizer: dict[int, dict] = {}

    def on_step_end(self, args, state, control, model=None, optimizer=None, **kwargs):
        self.weights[state.global_step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.optimizer[state.global_step] = copy.deepcopy(optimizer.state_dict()["state"])


def _inject(trainer: InSPOTrainer, kind: str) -> None:
    """Make step ``BAD_STEP`` non-finite: its loss (NaN logits) or one gradient (Inf)."""
    model = trainer.model

    def bad_now() -> bool:
        return trainer.state.global_step == BAD_STEP - 1 and model.training

    if kind == "loss":

        def nan_logits(module, inputs, output):
            return output * float("nan") if bad_now() else output

        model.get_output_embeddings().register_forward_hook(nan_logits)
    else:
        weight = model.model.layers[0].mlp.up_proj.weight
        weight.register_hook(lambda grad: grad * float("inf") if bad_now() else grad)


def _same(a: object, b: object) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


DTYPES = [torch.float32, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "bf16"])
def test_non_finite_loss_stops_by_default_naming_step_and_rows(tmp_path, chatml_tokenizer, dtype):
    trainer = _trainer(tmp_path, chatml_tokenizer, dtype, _rows(4))
    assert trainer.inspo.on_nonfinite == "stop"  # the default
    _inject(trainer, "loss")
    with pytest.raises(NonFiniteStepError) as err:
        trainer.train()
    message = str(err.value)
    assert f"training step {BAD_STEP} (loss nan)" in message, message
    assert "train rows 0, 1, 2, 3" in message and "on_nonfinite: skip" in message
    assert trainer.state.global_step == BAD_STEP - 1  # the bad step never reached the optimizer


@pytest.mark.parametrize("kind", ["loss", "grad"])
@pytest.mark.parametrize("dtype", DTYPES, ids=["fp32", "bf16"])
def test_skip_leaves_weights_and_optimizer_state_untouched(tmp_path, chatml_tokenizer, dtype, kind, caplog):
    trainer = _trainer(tmp_path, chatml_tokenizer, dtype, _rows(8), on_nonfinite="skip")
    snapshots = Snapshots()
    trainer.add_callback(snapshots)
    _inject(trainer, kind)
    with caplog.at_level(logging.WARNING, logger="inspo_plugin.trl.nonfinite"):
        trainer.train()

    assert trainer._nonfinite.skipped_steps == [BAD_STEP]
    warning = next(r.getMessage() for r in caplog.records if "non-finite" in r.getMessage())
    expected = "loss nan" if kind == "loss" else "gradient of model.layers.0.mlp.up_proj.weight"
    assert f"training step {BAD_STEP} ({expected})" in warning, warning
    assert "train rows " in warning and "Step skipped" in warning

    before, skipped, after = (snapshots.weights[s] for s in (BAD_STEP - 1, BAD_STEP, BAD_STEP + 1))
    assert _same(before, skipped), "the skipped step changed the weights"
    assert _same(snapshots.optimizer[BAD_STEP - 1], snapshots.optimizer[BAD_STEP]), "optimizer state changed"
    assert not _same(skipped, after), "training did not go on after the skipped step"
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert any(SKIPPED_METRIC in h for h in trainer.state.log_history)


def test_on_nonfinite_is_an_option_with_choices(tmp_path):
    field = next(f for f in InSPOOptions.__dataclass_fields__.values() if f.name == "on_nonfinite")
    assert field.default == "stop" and field.metadata["choices"] == ("stop", "skip")
    assert "NaN" in field.metadata["help"]
    with pytest.raises(OptionError, match="on_nonfinite"):
        InSPOOptions(on_nonfinite="ignore")
    with pytest.raises(OptionError, match=r"inspo\.on_nonfinite"):
        InSPOOptions.from_mapping({"on_nonfinite": "retry"})
    assert (
        InSPOConfig(output_dir=str(tmp_path), use_cpu=True, on_nonfinite="skip").inspo_options().on_nonfinite
        == "skip"
    )


@pytest.mark.parametrize("loss_type", sorted(OBJECTIVES))
def test_very_large_margins_stay_finite_in_bf16(loss_type):
    """Margins of ±1e4 nats and summed log-probs of -1e5 (very long answers), in bf16."""
    n = 4
    options = InSPOOptions(loss_type=loss_type, uncond_weight=1.0, sft_weight=1.0)
    for sign in (1.0, -1.0):
        chosen = torch.full((n,), -1.0e5 + sign * 1.0e4, dtype=torch.bfloat16, requires_grad=True)
        rejected = torch.full((n,), -1.0e5, dtype=torch.bfloat16, requires_grad=True)
        policy = PolicyLogps(chosen, rejected, chosen * 1.0, rejected * 1.0)
        reference = ReferenceLogps(
            torch.full((n,), -1.0e5, dtype=torch.bfloat16), torch.full((n,), -1.0e5, dtype=torch.bfloat16)
        )
        lengths = torch.full((n,), 50_000.0, dtype=torch.bfloat16)
        out = inspo_loss(policy, reference, lengths, lengths, options)
        loss = out.losses.mean()
        assert torch.isfinite(loss), (loss_type, sign, loss)
        loss.backward()
        assert torch.isfinite(chosen.grad).all() and torch.isfinite(rejected.grad).all(), loss_type
        assert all(torch.isfinite(v).all() for v in out.metrics.values()), loss_type


def test_very_long_answers_train_finite_in_bf16(tmp_path, chatml_tokenizer):
    """Answers of about 1500 tokens each (sequences A and B of about 3000) through a bf16 training step."""
    trainer = _trainer(
        tmp_path, chatml_tokenizer, torch.bfloat16, _rows(2, answer_words=700), max_steps=1, max_length=4096
    )
    lengths = [len(ids) for ids in trainer.train_dataset["inspo_ids_a"]]
    assert min(lengths) > 2500, lengths
    trainer.train()
    logs = next(h for h in trainer.state.log_history if "inspo/margin_cond" in h)
    assert all(math.isfinite(v) for k, v in logs.items() if isinstance(v, float)), logs
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
