"""InSPO's loss inside LLaMA-Factory's DPO trainer.

:func:`make_trainer_class` subclasses LLaMA-Factory's ``CustomDPOTrainer`` and replaces only
``get_batch_loss_metrics``; everything else is LLaMA-Factory's: the reference model it builds (a
frozen copy for full fine-tuning, prepared for DeepSpeed/FSDP; ``None`` for LoRA, where the reference
is the model with its adapter disabled; ``ref_model:`` when set), optimizer and scheduler, callbacks,
metric reduction across processes, saving.

Per batch of ``B`` pairs (``[A; B]`` from :class:`~inspo_plugin.core.collator.DataCollatorForReflectivePreference`):

- policy: one :func:`~inspo_plugin.core.logprobs.reflective_forward` → the four log-probs;
- reference (objectives that read one): the plain DPO pairs ``x·y_w`` and ``x·y_l`` (the prompt and
  first-answer prefix of A and B), or with ``reference: conditional`` the whole ``[A; B]``;
- loss and ``inspo/*`` metrics: :func:`~inspo_plugin.core.objectives.inspo_loss`, for every loss type
  (LLaMA-Factory 0.9.5's own ``hinge``/``ipo`` call TRL's ``dpo_loss`` without ``loss_type`` and so
  compute sigmoid with TRL ≥ 0.20; InSPO computes the objective named).

Besides ``inspo/*`` (the same names as the TRL and Axolotl trainers), LLaMA-Factory's DPO metrics
``rewards/{chosen,rejected,accuracies,margins}`` and ``logps/{chosen,rejected}`` are logged for the
deployed policy π(y|x), so LLaMA-Factory's loss plots and dashboards keep working.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

import torch

from inspo_plugin.core.context import ContextGainMonitor
from inspo_plugin.core.finite import gradient_problem
from inspo_plugin.core.layout import ROW_COLUMN
from inspo_plugin.core.logprobs import reflective_forward, split_policy_logps
from inspo_plugin.core.objectives import ReferenceLogps, inspo_loss
from inspo_plugin.core.sequences import Segment
from inspo_plugin.options import InSPOOptions

logger = logging.getLogger(__name__)


def plain_pairs(batch: Mapping[str, torch.Tensor], pad_token_id: int) -> dict[str, torch.Tensor]:
    """The DPO pairs inside ``[A; B]``: each row's prompt and first answer, the rest padding.

    Row ``i`` of A is ``x·y_w``, of B ``x·y_l`` — the sequences DPO scores — so segment FIRST of the
    result holds log π(y_w|x) (A rows) and log π(y_l|x) (B rows).
    """
    segments = batch["inspo_segment_ids"]
    keep = (segments == Segment.PROMPT) | (segments == Segment.FIRST)
    length = int(keep.sum(-1).max().item())
    keep = keep[:, :length]
    return {
        "inspo_input_ids": torch.where(keep, batch["inspo_input_ids"][:, :length], pad_token_id),
        "inspo_attention_mask": keep.long(),
        "inspo_segment_ids": torch.where(keep, segments[:, :length], int(Segment.PAD)),
    }


def parallelism(accelerator: Any) -> str:
    """How the training processes share the model, in words: ``"DeepSpeed ZeRO-3"``, ``"FSDP2"``, ..."""
    kind = str(getattr(accelerator.distributed_type, "value", accelerator.distributed_type))
    if kind == "DEEPSPEED":
        return f"DeepSpeed ZeRO-{accelerator.state.deepspeed_plugin.zero_stage}"
    if kind == "FSDP":
        return "FSDP2" if getattr(accelerator, "is_fsdp2", False) else "FSDP"
    return {"NO": "one process", "MULTI_GPU": "DDP", "MULTI_CPU": "DDP (CPU)"}.get(kind, kind)


def make_trainer_class(base: type, options: InSPOOptions) -> type:
    """``base`` (LLaMA-Factory's ``CustomDPOTrainer``) with the InSPO loss of ``options``."""

    class InSPODPOTrainer(base):  # type: ignore[valid-type,misc]
        """LLaMA-Factory's DPO trainer with the InSPO objective (see :mod:`inspo_plugin.llamafactory.trainer`)."""

        inspo = options

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not self.inspo.needs_reference:
                reference = "none (the objective reads no reference)"
            elif self.ref_model is not None:
                reference = "a frozen copy of the starting model"
            else:
                reference = "the model with its adapter disabled"
            logger.info(
                "InSPO trainer: %d process(es), %s; reference: %s",
                self.accelerator.num_processes,
                parallelism(self.accelerator),
                reference,
            )
            # One warning when the first training batches' conditional terms are mostly copying.
            self.context_gain = ContextGainMonitor(self.inspo.context_gain_warning)

        def training_step(
            self, model: Any, inputs: dict[str, Any], *args: Any, **kwargs: Any
        ) -> torch.Tensor:
            """LLaMA-Factory's step, then ``on_nonfinite: stop``: a NaN/Inf loss or gradient ends the run."""
            rows = inputs.get(ROW_COLUMN)
            loss = super().training_step(model, inputs, *args, **kwargs)
            problem = None if bool(torch.isfinite(loss.detach()).all()) else f"loss {loss.item()}"
            if problem is None and self.accelerator.sync_gradients and self.accelerator.scaler is None:
                problem = gradient_problem(model)
            if problem is not None:
                where = ", ".join(str(r) for r in rows.flatten().tolist()) if rows is not None else "unknown"
                raise FloatingPointError(
                    f"InSPO: non-finite value at training step {self.state.global_step + 1} ({problem}); "
                    f"batch: train rows {where}. Stopping (on_nonfinite: stop); lower the learning rate, "
                    "check these rows, or train in fp32/bf16."
                )
            return loss

        def get_batch_loss_metrics(
            self, model: Any, batch: dict[str, torch.Tensor], train_eval: str = "train"
        ) -> tuple[torch.Tensor, dict[str, float]]:
            loss, metrics, _ = self.inspo_step(model, batch, observe=train_eval == "train")
            prefix = "eval_" if train_eval == "eval" else ""
            return loss, {f"{prefix}{key}": value for key, value in metrics.items()}

        def inspo_step(
            self, model: Any, batch: Mapping[str, torch.Tensor], observe: bool = False
        ) -> tuple[torch.Tensor, dict[str, float], Any]:
            """Loss, metric means and the core's per-pair result for one collated batch.

            ``observe``: a training batch, counted by the context-gain check.
            """
            reference = self.inspo_reference(model, batch)
            seg, _ = reflective_forward(model, batch)
            policy, chosen_len, rejected_len = split_policy_logps(seg)
            warning = self.context_gain.observe(policy, chosen_len, rejected_len) if observe else None
            if warning and self.is_world_process_zero():
                logger.warning(warning)
            result = inspo_loss(policy, reference, chosen_len, rejected_len, self.inspo)
            metrics = {name: values.float().mean().item() for name, values in result.metrics.items()}
            if reference is not None:
                chosen = self.inspo.beta * (policy.chosen - reference.chosen).detach()
                rejected = self.inspo.beta * (policy.rejected - reference.rejected).detach()
                metrics["rewards/chosen"] = chosen.mean().item()
                metrics["rewards/rejected"] = rejected.mean().item()
                metrics["rewards/accuracies"] = (chosen > rejected).float().mean().item()
                metrics["rewards/margins"] = (chosen - rejected).mean().item()
            metrics["logps/chosen"] = policy.chosen.detach().mean().item()
            metrics["logps/rejected"] = policy.rejected.detach().mean().item()
            return result.losses.mean(), metrics, result

        def inspo_reference(self, model: Any, batch: Mapping[str, torch.Tensor]) -> ReferenceLogps | None:
            """Reference log-probs: ``self.ref_model``, or the model with its LoRA adapter disabled."""
            if not self.inspo.needs_reference:
                return None
            if self.ref_model is not None:
                ref_model, context = self.ref_model, contextlib.nullcontext()
            else:
                ref_model = model
                unwrapped = self.accelerator.unwrap_model(model)
                context = (
                    unwrapped.disable_adapter()
                    if hasattr(unwrapped, "disable_adapter")
                    else contextlib.nullcontext()
                )
            conditional = self.inspo.reference == "conditional"
            pad = getattr(self.processing_class, "pad_token_id", None) or 0
            with torch.no_grad(), context:
                scored = batch if conditional else plain_pairs(batch, pad)
                seg, _ = reflective_forward(ref_model, scored)
            chosen, rejected = seg.first.chunk(2)
            if not conditional:
                return ReferenceLogps(chosen=chosen, rejected=rejected)
            cond, _, _ = split_policy_logps(seg)
            return ReferenceLogps(chosen, rejected, cond.chosen_cond, cond.rejected_cond)

    InSPODPOTrainer.__qualname__ = InSPODPOTrainer.__name__
    return InSPODPOTrainer
