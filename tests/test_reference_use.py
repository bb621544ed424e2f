"""Which reference forwards a run makes, and what the margin metrics mean without a reference.

- A reference-free objective (SimPO, ORPO) loads no reference copy of the policy and ignores
  precomputed reference columns: its ``inspo/margin_*`` are policy log-prob differences.
- ``precompute_ref_log_probs`` with ``reference: conditional`` precomputes all four reference
  log-probs, so training makes no reference forward at all.
"""

from __future__ import annotations

import copy

import pytest
import torch
from datasets import Dataset

from inspo_plugin import InSPOTrainer
from inspo_plugin.models.tiny import build_tiny_model
from tests.test_trainer import lowercase_task, tiny_config


def _count_forwards(module: torch.nn.Module) -> list[int]:
    calls = [0]
    module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def _logs(trainer) -> list[dict]:
    return [h for h in trainer.state.log_history if "inspo/margin_cond" in h]


@pytest.mark.parametrize("loss_type", ["simpo", "orpo"])
def test_reference_free_objective_loads_no_reference_copy(tmp_path, tiny_checkpoint, loss_type):
    trainer = InSPOTrainer(
        model=str(tiny_checkpoint),  # a path: TRL would load the reference copy from it too
        args=tiny_config(tmp_path, loss_type=loss_type, max_steps=1, dataset_num_proc=None),
        train_dataset=Dataset.from_list(lowercase_task(4, seed=2)),
    )
    assert trainer.ref_model is None
    trainer.train()
    assert trainer.state.global_step == 1


def test_reference_free_margins_ignore_precomputed_reference(tmp_path, chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    trainer = InSPOTrainer(
        model=model,
        args=tiny_config(tmp_path, loss_type="simpo", precompute_ref_log_probs=True, dataset_num_proc=None),
        train_dataset=Dataset.from_list(lowercase_task(8, seed=3)),
        processing_class=chatml_tokenizer,
    )
    assert "ref_chosen_logps" not in trainer.train_dataset.column_names  # nothing to precompute
    trainer.train()
    for log in _logs(trainer):
        expected_cond = log["inspo/logps_chosen_cond"] - log["inspo/logps_rejected_cond"]
        expected_uncond = log["inspo/logps_chosen"] - log["inspo/logps_rejected"]
        assert log["inspo/margin_cond"] == pytest.approx(expected_cond, rel=1e-4, abs=1e-3)
        assert log["inspo/margin_uncond"] == pytest.approx(expected_uncond, rel=1e-4, abs=1e-3)


def test_sync_ref_model_is_refused_without_a_reference(tmp_path, chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    with pytest.raises(ValueError, match="sync_ref_model=True: loss_type 'simpo' reads no reference"):
        InSPOTrainer(
            model=model,
            args=tiny_config(tmp_path, loss_type="simpo", sync_ref_model=True, dataset_num_proc=None),
            train_dataset=Dataset.from_list(lowercase_task(4, seed=3)),
            processing_class=chatml_tokenizer,
        )


def test_precomputed_conditional_reference_means_no_reference_forward_in_training(tmp_path, chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    ref_model = copy.deepcopy(model)
    ref_calls = _count_forwards(ref_model)
    trainer = InSPOTrainer(
        model=model,
        ref_model=ref_model,
        args=tiny_config(
            tmp_path,
            reference="conditional",
            precompute_ref_log_probs=True,
            per_device_train_batch_size=2,
            dataset_num_proc=None,
        ),
        train_dataset=Dataset.from_list(lowercase_task(6, seed=5)),
        processing_class=chatml_tokenizer,
    )
    columns = trainer.train_dataset.column_names
    assert {
        "ref_chosen_logps",
        "ref_rejected_logps",
        "ref_chosen_cond_logps",
        "ref_rejected_cond_logps",
    } <= set(columns)
    precompute_calls = ref_calls[0]
    assert precompute_calls > 0

    # The precomputed columns equal a live reference forward over the same rows.
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(3)])
    live = trainer._reflective_reference(ref_model, batch)
    torch.testing.assert_close(batch["ref_chosen_cond_logps"], live.chosen_cond, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(batch["ref_rejected_logps"], live.rejected, rtol=1e-5, atol=1e-4)
    ref_calls[0] = 0

    trainer.train()
    assert ref_calls[0] == 0
    first = _logs(trainer)[0]
    # Before the first update the policy is the reference: both margins are zero up to fp32 rounding.
    assert abs(first["inspo/margin_cond"]) < 1e-2 and abs(first["inspo/margin_uncond"]) < 1e-2
