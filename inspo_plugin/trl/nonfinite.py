"""Training steps with a non-finite loss or gradient: found, named, and stopped or skipped.

A NaN or Inf in the loss or in any gradient would otherwise reach the optimizer and turn every weight
into NaN, and the run would go on training a broken model. :class:`NonFiniteGuard` checks each
optimizer step, after the backward pass of its last micro-batch (gradients complete, and reduced
across processes), before gradient clipping and the optimizer step:

- the loss of every micro-batch of the step, and the gradients (their largest magnitude, which is
  NaN or Inf exactly when one element is);
- with several processes, one process's finding is shared with all (one all-reduce per step), so
  every process takes the same decision, and the message lists the rows of the whole global batch.

Then, by the option ``on_nonfinite``:

- ``stop`` (default): :class:`NonFiniteStepError` ends the run, naming the step, what was non-finite
  and the rows of its batch;
- ``skip``: the step's gradients are dropped (set to ``None``), so the optimizer step leaves the
  weights and the optimizer's state (moments, step counts) as they were; the step is logged with
  the same details and flagged in the step's metrics (``inspo/nonfinite_skipped``). The learning-rate schedule advances as
  for any step.

With fp16 mixed precision (a gradient scaler), overflowing gradients are the scaler's normal
signal and it skips those steps itself: only the loss is checked there. Under DeepSpeed the engine
steps inside the backward pass, so ``skip`` cannot be honoured and is refused.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from inspo_plugin.core.finite import gradient_problem

logger = logging.getLogger(__name__)

SKIPPED_METRIC = "inspo/nonfinite_skipped"


class NonFiniteStepError(RuntimeError):
    """A training step whose loss or gradients hold a NaN or Inf, with ``on_nonfinite: stop``."""


class NonFiniteGuard:
    """Per-step state of the check; :meth:`after_backward` is called by the trainer's ``training_step``.

    Args:
        trainer: the InSPO trainer (its ``accelerator``, ``state``, ``model`` and ``_metrics``).
        policy: ``stop`` or ``skip`` (option ``on_nonfinite``).
        dataset: the dataset named in messages (``train``).
    """

    def __init__(self, trainer: Any, policy: str, dataset: str = "train") -> None:
        self.trainer, self.policy, self.dataset = trainer, policy, dataset
        self.skipped_steps: list[int] = []
        """Global step numbers (1-based, as logged) of the steps skipped so far."""
        self._rows: list[int] = []
        self._loss_problem: str | None = None

    def after_backward(self, loss: torch.Tensor, rows: torch.Tensor | None) -> None:
        """Record one micro-batch; on the last one of an optimizer step, check and act."""
        if rows is not None:
            self._rows.extend(int(r) for r in rows.flatten().tolist())
        if self._loss_problem is None and not bool(torch.isfinite(loss.detach()).all()):
            self._loss_problem = f"loss {loss.detach().float().mean().item()}"
        accelerator = self.trainer.accelerator
        if not accelerator.sync_gradients:
            return  # more micro-batches of this step to come
        try:
            self._check_step()
        finally:
            self._rows, self._loss_problem = [], None

    def _check_step(self) -> None:
        accelerator = self.trainer.accelerator
        scaler = getattr(accelerator, "scaler", None)
        problem = self._loss_problem
        if problem is None and scaler is None:
            problem = gradient_problem(self.trainer.model)
        if accelerator.num_processes > 1:
            flag = torch.tensor([0.0 if problem is None else 1.0], device=accelerator.device)
            if float(accelerator.reduce(flag, reduction="sum").item()) == 0:
                return
            from accelerate.utils import gather_object

            gathered = gather_object([(accelerator.process_index, problem, self._rows)])
            problems = [f"process {rank}: {p}" for rank, p, _ in gathered if p is not None]
            rows = sorted(r for _, _, rank_rows in gathered for r in rank_rows)
            problem = "; ".join(problems)
        elif problem is None:
            return
        else:
            rows = sorted(self._rows)
        step = self.trainer.state.global_step + 1
        where = f"{self.dataset} rows {', '.join(map(str, rows))}" if rows else f"{self.dataset} rows unknown"
        message = f"InSPO: non-finite value at training step {step} ({problem}); batch: {where}"
        if self.policy == "stop":
            raise NonFiniteStepError(
                f"{message}. Stopping (on_nonfinite: stop); set on_nonfinite: skip to skip such steps "
                "instead, or lower the learning rate, check these rows, or train in fp32/bf16."
            )
        if scaler is None:
            for param in self.trainer.model.parameters():
                param.grad = None  # the optimizer leaves parameters without a gradient untouched
        self.skipped_steps.append(step)
        self.trainer._metrics["train"][SKIPPED_METRIC].append(1.0)
        logger.warning(
            "%s. Step skipped (on_nonfinite: skip): weights and optimizer state unchanged; %d skipped so far",
            message,
            len(self.skipped_steps),
        )
