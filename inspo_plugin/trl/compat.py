"""What differs between the TRL releases InSPO supports (``trl>=1.14,<1.17``), in one place.

- **Fused LM head (TRL ≥ 1.15).** ``DPOTrainer.__init__`` calls ``add_fused_lm_head`` on the policy
  (its base model under PEFT) and on the reference model: it replaces ``forward`` *on the instance*
  (``model.forward = MethodType(_fused_forward, model)``; the class is untouched) by a wrapper that,
  called with ``fused_lm_head=True`` and ``labels``, runs the backbone and returns a
  ``FusedCausalLMOutput`` with per-token ``log_probs`` instead of logits. Called without
  ``fused_lm_head`` it calls the original forward with the same arguments, so InSPO's own forward
  (logits, ``logits_to_keep``, decoder hooks) is unchanged. There is no ``DPOConfig`` field to turn it
  off. TRL's reference log-probs (``compute_ref_log_probs``) use it, so the unconditional reference
  never builds full logits there. The wrapper keeps the original forward in a closure: on a
  ``copy.deepcopy`` of a patched model the plain forward would still run the *original* model;
  :func:`drop_copied_forward` repairs such a copy (InSPOTrainer applies it to the
  models it is given).
- **Reference log-probs.** TRL 1.14 computes them in ``_compute_ref_log_probs`` (called by
  ``compute_ref_log_probs``); 1.15 merged both into ``compute_ref_log_probs``, the name InSPO overrides
  and calls in every version.
- **Gradient accumulation.** 1.14 sets ``model_accepts_loss_kwargs = False`` in ``__init__``; 1.15 the
  class attribute ``loss_is_scaled_for_ga = False``. Both mean the same for InSPO's mean loss:
  ``Trainer`` divides it by the accumulation steps.
- **DataParallel.** 1.15 refuses ``n_gpu > 1`` in one process (``nn.DataParallel``: its replicas would
  run the forward bound to the original model); :func:`refuse_data_parallel` does the same on 1.14,
  whose replicas would share InSPO's forward hooks.
- **``use_liger_kernel``.** 1.14 switches DPO to its chunked loss path; 1.15 deprecates it (layer
  kernels only). InSPO refuses it in both (:data:`LIGER_REFUSAL`).
- **``pad_to_multiple_of``.** 1.16 defaults to ``"auto"`` and resolves it in ``DPOConfig.__post_init__``
  (128 on Neuron, ``None`` elsewhere); InSPO's collators read the resolved value.
- **Reference model (1.16).** A reference TRL loads from the policy's path inherits the policy's dtype
  and attention implementation; 1.14 loads it with ``model_init_kwargs`` only.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import trl
from packaging.version import Version
from trl.trainer import utils as trl_utils

TRL_VERSION = Version(trl.__version__)
"""The installed TRL release."""

SUPPORTED_TRL = ">=1.14,<1.17"
"""The TRL releases InSPO is tested with (the ``trl`` extra's range)."""

HAS_FUSED_LM_HEAD: bool = hasattr(trl_utils, "add_fused_lm_head")
"""TRL ≥ 1.15: ``DPOTrainer`` patches ``forward`` of the policy and the reference (see the module doc)."""

LIGER_REFUSAL = (
    "use_liger_kernel: InSPOTrainer does not support it (TRL 1.14 switches DPO to its chunked DPO loss, "
    "TRL >= 1.15 deprecates it); unset it"
)


def refuse_data_parallel(args: Any, trainer_name: str) -> None:
    """Refuse ``nn.DataParallel`` (several GPUs in one process), as TRL ≥ 1.15 does, on every TRL.

    Checked after ``Trainer.__init__``, which sets ``n_gpu`` to 1 for a model split with ``device_map``.
    """
    if getattr(args, "n_gpu", 1) > 1:
        raise ValueError(
            f"{trainer_name} does not support nn.DataParallel, which Trainer uses when several GPUs are "
            "visible to a single process. Launch the script with `accelerate launch` or `torchrun`, or make "
            "a single GPU visible with CUDA_VISIBLE_DEVICES."
        )


def _reaches_another(forward: Any, module: torch.nn.Module, depth: int = 0) -> bool:
    """Whether ``forward`` (through closures and ``__wrapped__``) calls a method bound to another ``module``.

    Only methods bound to a module of ``module``'s own class count: that is what a deep copy of a
    wrapped forward keeps (TRL's fused head, and anything wrapped around it, e.g. accelerate's autocast).
    """
    if depth > 16 or forward is None:
        return False
    bound_to = getattr(forward, "__self__", None)
    if isinstance(bound_to, torch.nn.Module) and bound_to is not module and type(bound_to) is type(module):
        return True
    func = getattr(forward, "__func__", forward)
    inner = [getattr(func, "__wrapped__", None)]
    for cell in getattr(func, "__closure__", None) or ():
        try:
            inner.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    functions = (types.FunctionType, types.MethodType)
    # Callable objects in between (accelerate's ConvertOutputsToFp32 keeps the forward as an attribute).
    held = [f for f in inner if callable(f) and not isinstance(f, (*functions, torch.nn.Module))]
    inner += [v for f in held for v in getattr(f, "__dict__", {}).values()]
    return any(_reaches_another(f, module, depth + 1) for f in inner if isinstance(f, functions))


def drop_copied_forward(model: Any) -> int:
    """Make a deep copy of a model whose ``forward`` TRL (≥ 1.15) patched run its own weights.

    ``add_fused_lm_head`` keeps the original bound forward in a closure, so on a ``copy.deepcopy`` the
    plain (non-fused) forward still runs the original model. Such instance-level forwards (and
    accelerate's saved ``_original_forward``) are removed, so the class's forward applies again; the
    trainer then patches and wraps the model anew. Returns the number of modules repaired; a model
    never patched, or patched for itself, is left as it is.
    """
    if not isinstance(model, torch.nn.Module):
        return 0
    repaired = 0
    for module in model.modules():
        stale = [
            name
            for name in ("forward", "_original_forward")
            if _reaches_another(module.__dict__.get(name), module)
        ]
        for name in stale:
            del module.__dict__[name]
        repaired += "forward" in stale
    return repaired
