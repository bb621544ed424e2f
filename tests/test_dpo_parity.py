"""Every option of TRL's DPOConfig is honoured by InSPO or refused when set, never silently ignored."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import TrainingArguments
from trl import DPOConfig

from inspo_plugin import InSPOConfig, InSPOTrainer
from inspo_plugin.options import OptionError
from inspo_plugin.trl.parity import DPO_OPTIONS, Honoured, Refused, dpo_default
from tests.test_trainer import lowercase_task

DPO_FIELDS = [
    f.name
    for f in dataclasses.fields(DPOConfig)
    if f.name not in {g.name for g in dataclasses.fields(TrainingArguments)}
]

# A value other than DPOConfig's default for every refused option.
REFUSED_VALUES = {
    "truncation_mode": "keep_end",
    "padding_free": True,
    "loss_weights": [1.0],
    "ld_alpha": 0.5,
    "f_divergence_type": "forward_kl",
    "f_alpha_divergence_coef": 0.3,
    "use_weighting": True,
    "discopop_tau": 0.1,
    "pad_token": "<|im_end|>",
}
REFUSED = [name for name, verdict in DPO_OPTIONS.items() if isinstance(verdict, Refused)]


def _config(tmp_path, **values) -> InSPOConfig:
    return InSPOConfig(output_dir=str(tmp_path / "out"), use_cpu=True, report_to=[], **values)


def test_every_dpo_option_is_classified():
    """A field a new TRL adds to DPOConfig fails here until it is honoured or refused in parity.py."""
    missing = [name for name in DPO_FIELDS if name not in DPO_OPTIONS]
    assert not missing, f"classify these DPOConfig fields in inspo_plugin/trl/parity.py: {missing}"
    assert set(DPO_OPTIONS) == set(DPO_FIELDS), "parity.py classifies fields DPOConfig no longer has"
    for name, verdict in DPO_OPTIONS.items():
        text = verdict.meaning if isinstance(verdict, Honoured) else verdict.reason
        assert len(text) > 20, name


def test_every_refused_option_has_a_non_default_value_here():
    assert set(REFUSED_VALUES) == set(REFUSED)
    for name, value in REFUSED_VALUES.items():
        assert value != dpo_default(name), name


@pytest.mark.parametrize("name", REFUSED)
def test_a_refused_option_set_is_an_error_naming_it(tmp_path, name):
    verdict = DPO_OPTIONS[name]
    assert isinstance(verdict, Refused)
    with pytest.raises(OptionError) as err:
        _config(tmp_path, **{name: REFUSED_VALUES[name]})
    assert str(err.value).startswith(f"{name}: ")
    assert verdict.reason in str(err.value)


def test_defaults_and_honoured_options_are_accepted(tmp_path):
    _config(tmp_path)
    _config(
        tmp_path,
        max_length=256,
        pad_to_multiple_of=8,
        dataset_num_proc=2,
        disable_dropout=False,
        activation_offloading=True,
        router_aux_loss_coef=0.5,
        precompute_ref_log_probs=True,
        precompute_ref_batch_size=16,
        loss_type="robust",
        label_smoothing=0.1,
        beta=0.3,
        model_init_kwargs={"dtype": "float32"},
        trust_remote_code=True,
    )
    _config(tmp_path, sync_ref_model=True, ref_model_mixup_alpha=0.9, ref_model_sync_steps=4)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"label_smoothing": 0.1}, "label_smoothing: only used by loss_type robust (loss_type is 'sigmoid')"),
        (
            {"precompute_ref_batch_size": 8},
            "precompute_ref_batch_size: 8 acts only with precompute_ref_log_probs=True",
        ),
        ({"ref_model_mixup_alpha": 0.9}, "ref_model_mixup_alpha: 0.9 acts only with sync_ref_model=True"),
        ({"ref_model_sync_steps": 4}, "ref_model_sync_steps: 4 acts only with sync_ref_model=True"),
    ],
)
def test_an_option_that_needs_another_is_refused_without_it(tmp_path, values, message):
    with pytest.raises(OptionError) as err:
        _config(tmp_path, **values)
    assert str(err.value).startswith(message)


def test_conditional_reference_with_precomputed_reference_is_accepted(tmp_path):
    # All four reference log-probs are precomputed (tests/test_reference_use.py trains with them).
    assert _config(tmp_path, reference="conditional", precompute_ref_log_probs=True).precompute_ref_log_probs
    _config(tmp_path, reference="conditional")
    _config(tmp_path, precompute_ref_log_probs=True)


def test_the_readme_lists_every_refused_option():
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Using `InSPOTrainer` from Python (TRL)", 1)[1].split("\n## ", 1)[0]
    for name in REFUSED:
        assert f"`{name}`" in section, f"README's TRL section does not mention refused {name}"


# --- honoured claims, checked on tiny models ------------------------------------------------------


def _trainer(tmp_path, tokenizer, model, ref_model=None, rows=8, **values) -> InSPOTrainer:
    defaults = dict(
        per_device_train_batch_size=4,
        max_steps=1,
        logging_steps=1,
        learning_rate=5e-3,
        max_length=512,
        save_strategy="no",
        seed=0,
    )
    return InSPOTrainer(
        model=model,
        ref_model=ref_model,
        args=_config(tmp_path, **{**defaults, **values}),
        train_dataset=Dataset.from_list(lowercase_task(rows, seed=0)),
        processing_class=tokenizer,
    )


def _tiny_mixtral(tokenizer, seed: int = 0):
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(seed)
    config = MixtralConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_local_experts=4,
        num_experts_per_tok=2,
        max_position_embeddings=2048,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    return MixtralForCausalLM(config)


def _batch(trainer: InSPOTrainer) -> dict:
    rows = [trainer.train_dataset[i] for i in range(4)]
    return trainer._prepare_inputs(trainer.data_collator(rows))


def test_moe_router_loss_is_added_exactly_as_in_dpo(tmp_path, chatml_tokenizer):
    """loss(c) = loss(0) + c · aux_loss, aux_loss from the policy's reflective forward; metric aux_loss."""
    model = _tiny_mixtral(chatml_tokenizer)
    losses, aux = {}, {}
    for coef in (0.0, 0.5, 50.0):
        trainer = _trainer(
            tmp_path, chatml_tokenizer, copy.deepcopy(model), copy.deepcopy(model), router_aux_loss_coef=coef
        )
        assert trainer.aux_loss_enabled == (coef != 0.0)
        trainer.model.train()
        with torch.no_grad():
            losses[coef] = trainer.compute_loss(trainer.model, _batch(trainer)).item()
        aux[coef] = trainer._metrics["train"].get("aux_loss", [None])[-1]
    assert aux[0.0] is None and aux[0.5] == pytest.approx(aux[50.0], rel=1e-9)
    assert aux[0.5] > 0
    assert len({losses[0.0], losses[0.5], losses[50.0]}) == 3
    for coef in (0.5, 50.0):
        assert losses[coef] - losses[0.0] == pytest.approx(coef * aux[coef], rel=1e-5)


def test_dropout_and_pad_to_multiple_of_act(tmp_path, chatml_tokenizer):
    from transformers import GPT2Config, GPT2LMHeadModel

    def gpt2():
        torch.manual_seed(0)
        config = GPT2Config(
            vocab_size=len(chatml_tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=1024
        )
        return GPT2LMHeadModel(config)

    trainer = _trainer(tmp_path, chatml_tokenizer, gpt2(), gpt2(), pad_to_multiple_of=16)
    dropouts = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.p == 0 for m in dropouts)
    batch = _batch(trainer)
    assert batch["input_ids"].shape[1] % 16 == 0 and batch["inspo_input_ids"].shape[1] % 16 == 0
    kept = _trainer(tmp_path, chatml_tokenizer, gpt2(), gpt2(), disable_dropout=False)
    assert any(m.p > 0 for m in kept.model.modules() if isinstance(m, torch.nn.Dropout))


def test_sync_ref_model_updates_the_reference_inspo_reads(tmp_path, chatml_tokenizer):
    from inspo_plugin.models.tiny import build_tiny_model

    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    trainer = _trainer(
        tmp_path,
        chatml_tokenizer,
        model,
        copy.deepcopy(model),
        sync_ref_model=True,
        ref_model_mixup_alpha=1.0,
        ref_model_sync_steps=1,
    )
    before = next(trainer.ref_model.parameters()).detach().clone()
    trainer.train()
    after = next(trainer.ref_model.parameters()).detach()
    assert not torch.equal(before, after)
    assert torch.equal(after, next(trainer.model.parameters()).detach())  # α = 1: π_ref ← π_θ


def test_activation_offloading_context_wraps_the_inspo_loss(tmp_path, chatml_tokenizer):
    """TRL enters ``maybe_activation_offload_context`` in ``training_step``, around InSPO's loss."""
    from inspo_plugin.models.tiny import build_tiny_model

    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    trainer = _trainer(tmp_path, chatml_tokenizer, model, copy.deepcopy(model))
    active, seen = [False], []

    @contextlib.contextmanager
    def recording():
        active[0] = True
        yield
        active[0] = False

    compute = trainer._compute_loss
    trainer._compute_loss = lambda *a, **k: (seen.append(active[0]), compute(*a, **k))[1]  # type: ignore[method-assign]
    trainer.maybe_activation_offload_context = recording()
    trainer.train()
    assert seen == [True]
