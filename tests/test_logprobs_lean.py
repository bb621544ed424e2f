"""The memory-lean log-prob path equals the full-logits path, values and gradients.

``reflective_forward`` computes log-probs from the decoder's hidden states at answer positions, a
chunk of the output head at a time; ``reflective_forward(..., full_logits=True)`` is the plain
computation from ``[N, L, V]`` logits (itself checked against unpadded standalone sequences in
test_trainer.py). Both run on the same model and batch here, in fp32.
"""

from __future__ import annotations

import logging

import pytest
import torch

import inspo_plugin.core.logprobs as logprobs
from inspo_plugin.core.collator import DataCollatorForReflectivePreference
from inspo_plugin.core.layout import layout_row
from inspo_plugin.core.logprobs import reflective_forward
from inspo_plugin.core.sequences import make_reflection_format
from inspo_plugin.models.tiny import build_tiny_model, build_tiny_tokenizer
from tests.test_trainer import lowercase_task, tokenize_preference_row

TOLERANCE = 1e-5
"""fp32: |lean − full| ≤ 1e-5 + 1e-5·|full| (a summed log-prob near 200 has an fp32 spacing of 1.5e-5)."""


def _batch(tokenizer, n_pairs: int, max_length: int | None = None, seed: int = 0):
    fmt = make_reflection_format(tokenizer, "revise")
    examples = []
    for row in lowercase_task(n_pairs, seed=seed):
        t = tokenize_preference_row(tokenizer, row)
        examples.append(layout_row(t["prompt_ids"], t["chosen_ids"], t["rejected_ids"], fmt, max_length))
    return DataCollatorForReflectivePreference(pad_token_id=tokenizer.pad_token_id)(examples)


def _loss(seg) -> torch.Tensor:
    # Different weights per segment so a swapped or misplaced segment changes the gradient.
    return (seg.first * 0.7 - seg.second * 1.3).sum()


def _values_and_grads(model, batch, full_logits: bool):
    model.zero_grad(set_to_none=True)
    seg, outputs = reflective_forward(model, batch, full_logits=full_logits)
    _loss(seg).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
    return seg, outputs, grads


def _assert_same(model, batch):
    lean, lean_out, lean_grads = _values_and_grads(model, batch, full_logits=False)
    full, full_out, full_grads = _values_and_grads(model, batch, full_logits=True)
    # The lean path ran (logits of one position only) and the full one did not.
    assert lean_out.logits.shape[1] == 1 and full_out.logits.shape[1] == batch["inspo_input_ids"].shape[1]
    for name in ("first", "second"):
        torch.testing.assert_close(getattr(lean, name), getattr(full, name), rtol=TOLERANCE, atol=TOLERANCE)
    assert torch.equal(lean.first_len, full.first_len) and torch.equal(lean.second_len, full.second_len)
    assert lean_grads.keys() == full_grads.keys() and lean_grads
    for name, grad in full_grads.items():
        # Relative to the tensor's largest entry: gradients sum over thousands of fp32 terms.
        error = (lean_grads[name] - grad).abs().max().item()
        assert error <= TOLERANCE * (1 + grad.abs().max().item()), (name, error)


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of a few positions, so every batch is split into many of them."""
    monkeypatch.setattr(logprobs, "CHUNK_ELEMENTS", 7 * 1100)


@pytest.mark.parametrize("family", ["llama3", "chatml", "mistral", "gemma2"])
@pytest.mark.parametrize("pairs", [1, 4])
def test_lean_logps_and_gradients_equal_full_logits(family, pairs, small_chunks):
    tokenizer = build_tiny_tokenizer(family)
    model = build_tiny_model(tokenizer, family, seed=3)
    if family == "gemma2":
        # A cap small enough to change the logits of a random tiny model (the default 30 barely would).
        model.config.final_logit_softcapping = 0.05
    batch = _batch(tokenizer, pairs, seed=pairs)
    if pairs > 1:  # rows of different lengths: padding inside the batch
        assert (batch["inspo_attention_mask"] == 0).any()
    _assert_same(model, batch)


def test_lean_path_applies_gemma2_soft_capping(small_chunks):
    """Soft-capping matters here (the capped and uncapped log-probs differ), and the lean path applies it."""
    tokenizer = build_tiny_tokenizer("gemma2")
    model = build_tiny_model(tokenizer, "gemma2", seed=3)
    model.config.final_logit_softcapping = 0.05
    batch = _batch(tokenizer, 2)
    with torch.no_grad():
        capped, _ = reflective_forward(model, batch)
        model.config.final_logit_softcapping = None
        uncapped, _ = reflective_forward(model, batch, full_logits=True)
    assert (capped.first - uncapped.first).abs().max() > 0.5


def test_lean_path_on_truncated_rows(small_chunks):
    tokenizer = build_tiny_tokenizer("llama3")
    model = build_tiny_model(tokenizer, "llama3", seed=4)
    untruncated = _batch(tokenizer, 3)
    max_length = int(untruncated["inspo_attention_mask"].sum(-1).min()) - 4
    batch = _batch(tokenizer, 3, max_length=max_length)
    assert batch["inspo_attention_mask"].sum(-1).max() <= max_length
    _assert_same(model, batch)


def test_lean_path_with_tied_embeddings(small_chunks):
    tokenizer = build_tiny_tokenizer("chatml")
    model = build_tiny_model(tokenizer, "chatml", seed=5)
    model.config.tie_word_embeddings = True
    model.tie_weights()
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    _assert_same(model, _batch(tokenizer, 2))


def test_lean_path_with_lora_adapters_on_the_head(small_chunks):
    from peft import LoraConfig, get_peft_model

    tokenizer = build_tiny_tokenizer("llama3")
    base = build_tiny_model(tokenizer, "llama3", seed=6)
    config = LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "lm_head"], init_lora_weights=False
    )
    model = get_peft_model(base, config)
    batch = _batch(tokenizer, 4)
    _assert_same(model, batch)
    # The adapter on the output head is applied: with it disabled the log-probs change.
    with torch.no_grad():
        with_adapter, _ = reflective_forward(model, batch)
        with model.disable_adapter():
            without, _ = reflective_forward(model, batch)
    assert (with_adapter.first - without.first).abs().max() > 1e-3


def test_lean_path_keeps_no_full_vocabulary_logits_for_backward(small_chunks):
    """Logits saved for backward: one vocabulary row per position on the full path, none on the lean one."""
    tokenizer = build_tiny_tokenizer("llama3")
    model = build_tiny_model(tokenizer, "llama3", seed=7)
    batch = _batch(tokenizer, 4)
    vocab = model.config.vocab_size

    def saved_vocabulary_rows(full_logits: bool) -> int:
        rows: list[int] = []

        def pack(tensor):
            weight = model.lm_head.weight.untyped_storage().data_ptr()
            if tensor.shape and tensor.shape[-1] == vocab and tensor.untyped_storage().data_ptr() != weight:
                rows.append(tensor.numel() // vocab)
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            seg, _ = reflective_forward(model, batch, full_logits=full_logits)
        _loss(seg).backward()
        return sum(rows)

    positions = batch["inspo_input_ids"].numel()
    assert saved_vocabulary_rows(full_logits=True) >= positions - len(batch["inspo_input_ids"])
    # Chunks are recomputed in backward, and the one-position logits of the forward feed no loss.
    assert saved_vocabulary_rows(full_logits=False) == 0


class _ScaledLogits(torch.nn.Module):
    """A causal LM whose forward doubles the head's logits: a transform the lean path does not know."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def get_decoder(self):
        return self.inner.get_decoder()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()

    def forward(self, input_ids=None, attention_mask=None, use_cache=None, logits_to_keep=0):
        out = self.inner(
            input_ids=input_ids,
            attention_mask=attention_mask,
            use_cache=use_cache,
            logits_to_keep=logits_to_keep,
        )
        out.logits = out.logits * 2
        return out


def test_unknown_logit_transform_falls_back_to_full_logits_with_a_warning(caplog):
    tokenizer = build_tiny_tokenizer("chatml")
    model = _ScaledLogits(build_tiny_model(tokenizer, "chatml", seed=8))
    batch = _batch(tokenizer, 2)
    with caplog.at_level(logging.WARNING, logger="inspo_plugin.core.logprobs"), torch.no_grad():
        seg, outputs = reflective_forward(model, batch)
        expected, _ = reflective_forward(model, batch, full_logits=True)
    assert outputs.logits.shape[1] == batch["inspo_input_ids"].shape[1]
    torch.testing.assert_close(seg.first, expected.first)
    assert "not a known transform" in caplog.text and "_ScaledLogits" in caplog.text
