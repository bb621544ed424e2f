"""Per-segment summed log-probs of reflective sequences (torch only).

One forward over the batch ``[A_1 … A_B, B_1 … B_B]`` gives, per pair,

    A: FIRST = log π(y_w | x)        SECOND = log π(y_l | x, y_w)
    B: FIRST = log π(y_l | x)        SECOND = log π(y_w | x, y_l)

which :func:`split_policy_logps` turns into the four numbers the objectives take.

Memory. Reflective sequences are about twice as long as DPO's, and full-vocabulary logits
``[N, L, V]`` (plus an fp32 copy for the softmax) dominate a step's memory at 128k vocabularies.
:func:`reflective_forward` therefore never materialises them:

1. the model's own forward runs with ``logits_to_keep=1`` (its output head sees one position per
   row), so DeepSpeed ZeRO-3 / FSDP2 parameter gathering, PEFT adapters, gradient checkpointing and
   any patches of the model's modules apply as in a normal forward;
2. a forward hook on the model's decoder (``get_decoder()``) takes its final hidden states ``[N, L, H]``
   and keeps only the answer positions (FIRST and SECOND targets; never prompt, bridge or padding);
3. those ``T`` positions go through the model's output head (``get_output_embeddings()``, called as a
   module so its hooks and adapters run) in chunks of about :data:`CHUNK_ELEMENTS` logits, each chunk's
   log-probs accumulated in fp32 (fp64 for a float64 model); with gradients on, a chunk is checkpointed
   (``torch.utils.checkpoint``), so its logits are recomputed in backward instead of being kept.

The model's post-head transforms are applied as the model applies them: final-logit soft-capping
(Gemma-2/3: ``c · tanh(z / c)``), ``logits_scaling`` (Granite: ``z / s``) and ``logit_scale`` (Cohere:
``z · s``). On a model's first call the head path is checked against the model's own logits at the
kept position; a model whose forward does not take ``logits_to_keep``, has no decoder or output head,
or whose logits do not match (an unknown transform) uses the full-logits path (:func:`token_logps`),
with a warning naming the reason. Both paths give the same numbers.
"""

from __future__ import annotations

import inspect
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from inspo_plugin.core.objectives import PolicyLogps
from inspo_plugin.core.sequences import Segment

logger = logging.getLogger(__name__)

CHUNK_ELEMENTS = 1 << 25
"""Logits per chunk of the output head (32M: 256 positions at a 128k vocabulary, 128 MiB in fp32)."""


def token_logps(logits: Tensor, input_ids: Tensor) -> Tensor:
    """log p(token_t | tokens_<t) for t ≥ 1, shape ``[N, L-1]``, computed one row at a time.

    The full-logits reference computation (and the fallback of :func:`reflective_forward`).

    Args:
        logits: ``[N, L, V]`` model outputs.
        input_ids: ``[N, L]`` token ids.
    """
    labels = input_ids[:, 1:]
    shifted = logits[:, :-1, :]
    rows = []
    for row_logits, row_labels in zip(shifted, labels, strict=True):
        # Half-precision logits are upcast to fp32, one sequence at a time, so memory stays at one [L, V] block.
        row = row_logits.float() if row_logits.dtype in (torch.float16, torch.bfloat16) else row_logits
        picked = torch.gather(row, -1, row_labels.unsqueeze(-1)).squeeze(-1)
        rows.append(picked - torch.logsumexp(row, dim=-1))
    return torch.stack(rows)


@dataclass(frozen=True)
class SegmentLogps:
    """Summed log-probs and token counts of the two answer segments, each ``[N]``."""

    first: Tensor
    second: Tensor
    first_len: Tensor
    second_len: Tensor


def segment_logps(per_token_logps: Tensor, segment_ids: Tensor) -> SegmentLogps:
    """Sum per-token log-probs over the FIRST and SECOND answer segments.

    Args:
        per_token_logps: ``[N, L-1]`` from :func:`token_logps` (position t scores token t+1).
        segment_ids: ``[N, L]`` labels from :class:`~inspo_plugin.core.sequences.Segment`.
    """
    target_segments = segment_ids[:, 1:]
    first = target_segments == Segment.FIRST
    second = target_segments == Segment.SECOND
    zero = per_token_logps.new_zeros(())
    return SegmentLogps(
        first=torch.where(first, per_token_logps, zero).sum(-1),
        second=torch.where(second, per_token_logps, zero).sum(-1),
        first_len=first.sum(-1),
        second_len=second.sum(-1),
    )


# -- the output head -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputHead:
    """A causal LM's output head and the transforms its forward applies to the head's output.

    ``logits = transform(head(hidden))``, as the model's own forward computes them.
    """

    module: torch.nn.Module
    softcap: float | None = None
    divide_by: float | None = None
    multiply_by: float | None = None

    def logits(self, hidden: Tensor) -> Tensor:
        """``[..., V]`` logits, in the head's dtype, of hidden states ``[..., H]``."""
        logits = self.module(hidden)
        if self.multiply_by is not None:
            logits = logits * self.multiply_by
        if self.divide_by is not None:
            logits = logits / self.divide_by
        if self.softcap is not None:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits


def _chunk_logps(head: OutputHead, hidden: Tensor, rows: Tensor, positions: Tensor, labels: Tensor) -> Tensor:
    """``log softmax(logits)[label]`` at ``T`` positions ``(rows, positions)`` of hidden ``[N, L, H]``.

    Half-precision logits are upcast to fp32 (as :func:`token_logps` does); fp32 and fp64 stay as they are.
    """
    logits = head.logits(hidden[rows, positions])
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    picked = torch.gather(logits, -1, labels.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)


def chunked_token_logps(
    head: OutputHead, hidden: Tensor, rows: Tensor, positions: Tensor, labels: Tensor, chunk_size: int
) -> Tensor:
    """Log-probs ``[T]`` (fp32, or fp64 for a float64 model) of ``labels`` at ``(rows, positions)``, a chunk at a time.

    Args:
        head: the output head.
        hidden: ``[N, L, H]`` final hidden states (position t predicts token t+1).
        rows, positions, labels: ``[T]`` each: where to score, and the token to score there.
        chunk_size: positions per chunk.

    With gradients on, each chunk is checkpointed: its hidden rows and logits are recomputed in
    backward from ``hidden`` (kept anyway for the model's own backward), so at most one chunk of
    logits is alive at any time and no gathered copy of the hidden states is kept.
    """
    pieces = []
    for start in range(0, labels.shape[0], chunk_size):
        chunk = slice(start, start + chunk_size)
        args = (head, hidden, rows[chunk], positions[chunk], labels[chunk])
        if torch.is_grad_enabled() and hidden.requires_grad:
            pieces.append(checkpoint(_chunk_logps, *args, use_reentrant=False))
        else:
            pieces.append(_chunk_logps(*args))
    if not pieces:
        return hidden.new_zeros(0, dtype=torch.float32 if hidden.element_size() < 4 else hidden.dtype)
    return torch.cat(pieces)


# -- the forward -------------------------------------------------------------------------------------


def reflective_forward(
    model: Any,
    batch: Mapping[str, Tensor],
    model_kwargs: Mapping[str, Any] | None = None,
    *,
    full_logits: bool = False,
) -> tuple[SegmentLogps, Any]:
    """One forward over the collated ``[A; B]`` batch; returns the per-segment sums and the outputs.

    Log-probs are computed at answer positions only, from the final hidden states, without
    full-vocabulary logits (see the module docstring); the returned outputs then hold logits of the
    last position only.

    Args:
        model: a causal LM (possibly wrapped by PEFT, DeepSpeed, DDP or FSDP).
        batch: the collated ``inspo_input_ids``, ``inspo_attention_mask`` and ``inspo_segment_ids``.
        model_kwargs: extra keyword arguments of the forward, e.g. ``output_router_logits=True`` so a
            mixture-of-experts model returns its load-balancing loss as ``outputs.aux_loss``.
        full_logits: compute the full ``[N, L, V]`` logits and take log-probs from them (the reference
            computation; also used when the lean path does not apply to ``model``).
    """
    ids, segments = batch["inspo_input_ids"], batch["inspo_segment_ids"]
    forward_kwargs = {"input_ids": ids, "attention_mask": batch["inspo_attention_mask"], "use_cache": False}
    forward_kwargs.update(model_kwargs or {})
    lean = None if full_logits else _lean_parts(model)
    if lean is None:
        outputs = model(**forward_kwargs)
        return segment_logps(token_logps(outputs.logits, ids), segments), outputs

    decoder, head, state = lean
    targets = segments[:, 1:]
    answer = (targets == Segment.FIRST) | (targets == Segment.SECOND)
    rows, positions = answer.nonzero(as_tuple=True)
    labels = ids[:, 1:][rows, positions]
    found: dict[str, Tensor] = {}

    def on_decoder_output(_module: Any, _args: Any, output: Any) -> None:
        # Runs inside the model's forward, while sharded parameters are gathered.
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        found["last"] = hidden[:, -1].detach()
        found["logps"] = chunked_token_logps(head, hidden, rows, positions, labels, _chunk_size(head))

    handle = decoder.register_forward_hook(on_decoder_output)
    try:
        outputs = model(**forward_kwargs, logits_to_keep=1)
    finally:
        handle.remove()
    if "logps" not in found:
        return _fall_back(model, state, "its decoder was not called", batch, model_kwargs)
    if not state.get("checked"):
        problem = _head_mismatch(head, found["last"], outputs)
        if problem:
            return _fall_back(model, state, problem, batch, model_kwargs)
        state["checked"] = True

    per_token = found["logps"].new_zeros(targets.shape).index_put((rows, positions), found["logps"])
    return segment_logps(per_token, segments), outputs


# Per-model state of the lean path: {"checked": True} or {"disabled": reason}, keyed by the head module.
_HEAD_STATE: weakref.WeakKeyDictionary[torch.nn.Module, dict[str, Any]] = weakref.WeakKeyDictionary()


def _unwrap(model: Any) -> Any:
    """The ``PreTrainedModel`` inside DDP/DeepSpeed (``.module``) and PEFT (``get_base_model()``) wrappers."""
    for _ in range(8):
        if hasattr(model, "get_base_model"):
            model = model.get_base_model()
        elif hasattr(model, "module") and isinstance(model.module, torch.nn.Module):
            model = model.module
        else:
            break
    return model


def _lean_parts(model: Any) -> tuple[torch.nn.Module, OutputHead, dict[str, Any]] | None:
    """The decoder, output head and state of the lean path, or ``None`` where it does not apply."""
    inner = _unwrap(model)
    get_decoder = getattr(inner, "get_decoder", None)
    get_head = getattr(inner, "get_output_embeddings", None)
    decoder = get_decoder() if callable(get_decoder) else None
    module = get_head() if callable(get_head) else None
    if (
        not isinstance(decoder, torch.nn.Module)
        or not isinstance(module, torch.nn.Module)
        or decoder is inner
    ):
        return None
    state = _HEAD_STATE.setdefault(module, {})
    if state.get("disabled"):
        return None
    if "logits_to_keep" not in inspect.signature(inner.forward).parameters:
        _disable(inner, state, "its forward takes no `logits_to_keep`")
        return None
    config: Any = getattr(inner, "config", None)
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    softcap = getattr(text_config, "final_logit_softcapping", None)
    divide_by = getattr(text_config, "logits_scaling", None)
    multiply_by = getattr(inner, "logit_scale", None)
    head = OutputHead(
        module,
        softcap=float(softcap) if softcap else None,
        divide_by=float(divide_by) if divide_by not in (None, 1, 1.0) else None,
        multiply_by=float(multiply_by) if isinstance(multiply_by, int | float) and multiply_by != 1 else None,
    )
    return decoder, head, state


def _chunk_size(head: OutputHead) -> int:
    vocab = getattr(head.module, "out_features", None) or getattr(head.module, "num_embeddings", None) or 1
    return max(1, CHUNK_ELEMENTS // int(vocab))


def _head_mismatch(head: OutputHead, last_hidden: Tensor, outputs: Any) -> str | None:
    """Why the head path does not reproduce the model's own logits at the kept position, or ``None``."""
    logits = getattr(outputs, "logits", None)
    if logits is None or logits.dim() != 3 or logits.shape[1] != 1:
        return "its forward did not return logits for `logits_to_keep=1`"
    with torch.no_grad():
        ours = head.logits(last_hidden).float()
        theirs = logits[:, -1].detach().float()
        if ours.shape != theirs.shape:
            return f"its output head gives logits of shape {tuple(ours.shape)}, its forward {tuple(theirs.shape)}"
        scale = theirs.abs().max().clamp_min(1e-6)
        # Same operations on the same values: only kernel rounding may differ (bf16: ~0.4% of the range).
        if ((ours - theirs).abs().max() / scale).item() > 1e-2:
            return "its logits are not a known transform of its output head (final soft-capping, scaling)"
    return None


def _disable(model: Any, state: dict[str, Any], reason: str) -> None:
    state["disabled"] = reason
    logger.warning(
        "InSPO: %s uses full-vocabulary logits for its log-probs (more memory): %s.",
        type(model).__name__,
        reason,
    )


def _fall_back(
    model: Any,
    state: dict[str, Any],
    reason: str,
    batch: Mapping[str, Tensor],
    model_kwargs: Mapping[str, Any] | None,
) -> tuple[SegmentLogps, Any]:
    _disable(_unwrap(model), state, reason)
    return reflective_forward(model, batch, model_kwargs, full_logits=True)


def split_policy_logps(seg: SegmentLogps) -> tuple[PolicyLogps, Tensor, Tensor]:
    """Map the ``[2B]`` segment sums of ``[A; B]`` to policy log-probs and response lengths ``[B]``."""
    a_first, b_first = seg.first.chunk(2)
    a_second, b_second = seg.second.chunk(2)
    policy = PolicyLogps(chosen=a_first, rejected=b_first, chosen_cond=b_second, rejected_cond=a_second)
    chosen_len, rejected_len = seg.first_len.chunk(2)
    return policy, chosen_len, rejected_len
