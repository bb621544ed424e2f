"""InSPOTrainer on every supported TRL (1.14 in .venv, the newest in .venv-trl-latest): the parts that differ.

TRL ≥ 1.15 patches ``forward`` of the policy and reference with a fused LM head and merged its
reference log-prob helpers into ``compute_ref_log_probs``; see :mod:`inspo_plugin.trl.compat`.
"""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest
import torch
from datasets import Dataset
from packaging.version import Version

from inspo_plugin import InSPOTrainer
from inspo_plugin.core.logprobs import reflective_forward
from inspo_plugin.models.tiny import build_tiny_model
from inspo_plugin.trl.compat import (
    HAS_FUSED_LM_HEAD,
    SUPPORTED_TRL,
    TRL_VERSION,
    drop_copied_forward,
    refuse_data_parallel,
)
from tests.test_trainer import lowercase_task, tiny_config


def _trainer(tmp_path, tokenizer, **config) -> InSPOTrainer:
    model = build_tiny_model(tokenizer, "chatml", seed=0)
    ref = build_tiny_model(tokenizer, "chatml", seed=7)  # another model: reference ≠ policy
    return InSPOTrainer(
        model=model,
        ref_model=ref,
        args=tiny_config(tmp_path, dataset_num_proc=None, bf16=False, **config),
        train_dataset=Dataset.from_list(lowercase_task(8, seed=3)),
        processing_class=tokenizer,
    )


def _batch(trainer: InSPOTrainer) -> dict:
    rows = [trainer.train_dataset[i] for i in range(4)]
    return trainer._prepare_inputs(trainer.data_collator(rows))


def _class_forward_logps(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """Independent computation: the class's own forward (never an instance patch), full log-softmax."""
    with torch.no_grad():
        logits = type(model).forward(model, input_ids=input_ids, attention_mask=attention_mask).logits
    logp = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    picked = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    return (picked * completion_mask[:, 1:]).sum(-1)


def test_the_installed_trl_is_a_supported_one():
    assert Version("1.14") <= TRL_VERSION < Version("1.17"), SUPPORTED_TRL
    # The fused LM head is what TRL 1.15 added; its presence is detected, not read from the version.
    fused_release = Version("1.15") <= TRL_VERSION
    assert fused_release == HAS_FUSED_LM_HEAD


def test_inspo_forward_and_reference_are_right_with_this_trls_forward(tmp_path, chatml_tokenizer):
    """Policy log-probs of [A; B] and TRL's reference log-probs equal the class forward's, on any TRL."""
    trainer = _trainer(tmp_path, chatml_tokenizer)
    model, ref = trainer.model.eval(), trainer.ref_model.eval()
    # TRL >= 1.15 replaces forward on the instance (not the class); 1.14 leaves it alone.
    assert ("forward" in model.__dict__) == HAS_FUSED_LM_HEAD
    assert ("forward" in ref.__dict__) == HAS_FUSED_LM_HEAD
    batch = _batch(trainer)

    # InSPO's own forward (no fused_lm_head argument) sees the model's plain forward.
    with torch.no_grad():
        seg, _ = reflective_forward(model, batch)
        full, _ = reflective_forward(model, batch, full_logits=True)
    segments = batch["inspo_segment_ids"]
    from inspo_plugin.core.sequences import Segment

    for kind, ours, plain in (("FIRST", seg.first, full.first), ("SECOND", seg.second, full.second)):
        mask = (segments == getattr(Segment, kind)).long()
        expected = _class_forward_logps(model, batch["inspo_input_ids"], batch["inspo_attention_mask"], mask)
        assert torch.allclose(ours.double(), expected, atol=1e-4, rtol=0), kind
        assert torch.allclose(plain.double(), expected, atol=1e-4, rtol=0), kind

    # The unconditional reference comes from TRL (1.15+: through its fused head) and from ref_model.
    chosen, rejected = trainer.compute_ref_log_probs(ref, batch)
    expected = _class_forward_logps(
        ref, batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    )
    assert torch.allclose(torch.cat([chosen, rejected]).double(), expected, atol=1e-4, rtol=0)
    policy = _class_forward_logps(
        model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    )
    assert not torch.allclose(policy, expected, atol=1e-2)  # so the check above tells the two apart


def test_a_deep_copy_of_a_patched_model_runs_its_own_weights(tmp_path, chatml_tokenizer):
    """With TRL >= 1.15 a deep copy of a patched model would run the original; the trainer repairs it."""
    first = _trainer(tmp_path, chatml_tokenizer)
    copied = copy.deepcopy(first.model)
    with torch.no_grad():
        for p in copied.parameters():
            p.mul_(1.5)
    ids = torch.tensor([[1, 5, 7, 9, 11]])

    def own(m):
        with torch.no_grad():
            return torch.allclose(m(input_ids=ids).logits, type(m).forward(m, input_ids=ids).logits)

    assert own(copied) == (not HAS_FUSED_LM_HEAD)  # the hazard exists exactly where TRL patches
    second = InSPOTrainer(
        model=build_tiny_model(chatml_tokenizer, "chatml", seed=0),
        ref_model=copied,
        args=tiny_config(tmp_path, dataset_num_proc=None, bf16=False, reference="conditional"),
        train_dataset=Dataset.from_list(lowercase_task(8, seed=3)),
        processing_class=chatml_tokenizer,
    )
    assert second.ref_model is copied and own(copied)
    assert drop_copied_forward(copied) == 0  # nothing left to repair
    # InSPO's conditional reference forward now scores with the copy's weights.
    batch = _batch(second)
    with torch.no_grad():
        ours, _ = reflective_forward(copied, batch, full_logits=True)
        logits = (
            type(copied)
            .forward(copied, input_ids=batch["inspo_input_ids"], attention_mask=batch["inspo_attention_mask"])
            .logits
        )
    from inspo_plugin.core.logprobs import segment_logps, token_logps

    expected = segment_logps(token_logps(logits, batch["inspo_input_ids"]), batch["inspo_segment_ids"])
    assert torch.allclose(ours.second, expected.second, atol=1e-5)


def test_training_with_precomputed_reference_on_this_trl(tmp_path, chatml_tokenizer):
    """TRL's precompute loop calls compute_ref_log_probs with InSPO's batches (1.14 and 1.15+ names)."""
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    trainer = InSPOTrainer(
        model=model,
        args=tiny_config(
            tmp_path, dataset_num_proc=None, bf16=False, precompute_ref_log_probs=True, max_steps=1
        ),
        train_dataset=Dataset.from_list(lowercase_task(8, seed=3)),
        processing_class=chatml_tokenizer,
    )
    row = trainer.train_dataset[0]
    batch = trainer._prepare_inputs(trainer.data_collator([row]))
    expected = _class_forward_logps(
        model, batch["input_ids"], batch["attention_mask"], batch["completion_mask"]
    )
    precomputed = torch.tensor([row["ref_chosen_logps"], row["ref_rejected_logps"]], dtype=torch.double)
    assert torch.allclose(precomputed, expected, atol=1e-4, rtol=0)
    trainer.train()
    assert trainer.state.global_step == 1


def test_data_parallel_is_refused_on_every_trl():
    with pytest.raises(ValueError, match=r"does not support nn\.DataParallel"):
        refuse_data_parallel(SimpleNamespace(n_gpu=2), "InSPOTrainer")
    refuse_data_parallel(SimpleNamespace(n_gpu=1), "InSPOTrainer")


def test_drop_copied_forward_finds_a_closure_bound_forward_under_other_wrappers(chatml_tokenizer):
    """The shape of TRL's patch (a closure over the bound original), also inside accelerate's wrapper."""
    import types

    from accelerate.utils import convert_outputs_to_fp32

    def patch_like_trl(model):
        original_forward = model.forward

        def _fused_forward(self, *args, fused_lm_head=False, **kwargs):
            return original_forward(*args, **kwargs)

        model.forward = types.MethodType(_fused_forward, model)

    ids = torch.tensor([[1, 5, 7, 9, 11]])

    def own(m):
        with torch.no_grad():
            return torch.equal(m(input_ids=ids).logits, type(m).forward(m, input_ids=ids).logits)

    for accelerate_wrapped in (False, True):
        model = build_tiny_model(chatml_tokenizer, "chatml", seed=0).eval()
        patch_like_trl(model)
        if accelerate_wrapped:  # what Accelerator.prepare_model does with mixed precision
            model._original_forward = model.forward
            model.forward = types.MethodType(convert_outputs_to_fp32(model.forward.__func__), model)
        assert own(model) and drop_copied_forward(model) == 0  # patched for itself: left alone
        copied = copy.deepcopy(model)
        with torch.no_grad():
            for p in copied.parameters():
                p.mul_(1.5)
        assert not own(copied)  # the copy's forward still runs the original's weights
        assert drop_copied_forward(copied) == 1
        assert own(copied) and "_original_forward" not in copied.__dict__
