"""Where a training step went non-finite (torch only): the check both trainers run after backward."""

from __future__ import annotations

import math
from typing import Any

import torch


def gradient_problem(model: Any) -> str | None:
    """``gradient of <parameter>`` for the first parameter whose gradient holds a NaN or Inf, or ``None``.

    One reduction per parameter (the largest magnitude, NaN if any element is NaN) and one device
    synchronisation for the whole model; the names are looked up only when something is wrong.
    FSDP2 gradients are checked on this process's local shard.
    """
    named = [(name, p.grad) for name, p in model.named_parameters() if p.grad is not None]
    if not named:
        return None
    grads = [g.to_local() if hasattr(g, "to_local") else g for _, g in named]
    total = torch.nn.utils.get_total_norm(grads, norm_type=math.inf, error_if_nonfinite=False)
    if bool(torch.isfinite(total)):
        return None
    for (name, _), grad in zip(named, grads, strict=True):
        if not bool(torch.isfinite(grad).all()):
            return f"gradient of {name}"
    return "gradient norm"
