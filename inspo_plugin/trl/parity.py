"""Every option ``DPOConfig`` adds to ``TrainingArguments``: honoured by InSPO, or refused when set.

``InSPOConfig`` inherits all of ``DPOConfig``'s fields (the same set in TRL 1.14, 1.15 and 1.16;
1.16 changes only ``pad_to_multiple_of``'s default). :data:`DPO_OPTIONS` says, for each one, what it
does in an InSPO run (:class:`Honoured`) or why InSPO cannot honour it (:class:`Refused`); a refused
field set to anything but ``DPOConfig``'s default (of the installed TRL) is an
:class:`~inspo_plugin.options.OptionError` naming it, so no DPO option is silently ignored.

"Honoured" means it acts in the InSPO code path, which is TRL's ``DPOTrainer`` with
``_prepare_dataset`` (after TRL's own), the collator and ``_compute_loss`` replaced: model loading,
dropout, the reference model and its sync callback, precomputation and ``training_step`` (activation
offloading) are TRL's own and run unchanged. An option that acts only together with another
(``only_with``) is refused when set without it (TRL would ignore it silently).

``tests/test_dpo_parity.py`` fails for a ``DPOConfig`` field missing here, i.e. one a new TRL adds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from trl import DPOConfig

from inspo_plugin.options import OptionError


@dataclass(frozen=True)
class Honoured:
    """A DPO option InSPO honours, and what it means in an InSPO run."""

    meaning: str
    only_with: tuple[str, Any] | None = None
    """``(option, value)``: it acts only when that option has that value, and is refused otherwise."""


@dataclass(frozen=True)
class Refused:
    """A DPO option InSPO cannot honour: allowed only at ``DPOConfig``'s default."""

    reason: str


DPO_OPTIONS: dict[str, Honoured | Refused] = {
    "model_init_kwargs": Honoured(
        "kwargs of from_pretrained when model (and the implicit reference) is a path; TRL's loading"
    ),
    "trust_remote_code": Honoured("forwarded to from_pretrained of the model, reference and tokenizer"),
    "router_aux_loss_coef": Honoured(
        "MoE: loss + coef · aux_loss of the reflective policy forward (output_router_logits), metric "
        "aux_loss, as in TRL's DPO; null takes the model config's coefficient"
    ),
    "disable_dropout": Honoured("TRL sets every Dropout of the policy and reference to p = 0"),
    "dataset_num_proc": Honoured("processes of every dataset map: row checks, TRL's tokenisation, layout"),
    "max_length": Honoured(
        "bounds each reflective sequence x·y·bridge·y′; responses are cut from the tail, longer first"
    ),
    "truncation_mode": Refused(
        "InSPO truncates with its own policy (prompt and bridge kept, responses cut from the tail); "
        "TRL's keep_end (deprecated) is not implemented"
    ),
    "padding_free": Refused(
        "the [A; B] batch is padded; TRL (1.14 to 1.16) itself disables padding_free and falls back to "
        "padding"
    ),
    "pad_to_multiple_of": Honoured(
        "pads the plain pairs and the reflective [A; B] batch to a multiple; TRL 1.16's default 'auto' "
        "is resolved by DPOConfig (128 on Neuron, no padding elsewhere)"
    ),
    "precompute_ref_log_probs": Honoured(
        "every reference log-prob the objective reads, precomputed before training: log π_ref(y|x) by "
        "TRL's loop; with reference: conditional also log π_ref(y|x,y') from the reflective sequences; "
        "nothing for SimPO/ORPO"
    ),
    "precompute_ref_batch_size": Honoured(
        "batch size of that precomputation", only_with=("precompute_ref_log_probs", True)
    ),
    "loss_type": Honoured("one InSPO objective on the cross-conditioned log-probs (InSPO's own list)"),
    "loss_weights": Refused(
        "InSPO trains one objective (loss_type), so there is nothing to weight; add terms with "
        "uncond_weight or sft_weight"
    ),
    "ld_alpha": Refused(
        "LD-DPO would have to re-weight the policy's reflective log-probs the same way as the "
        "reference (TRL would re-weight the reference only); not implemented"
    ),
    "f_divergence_type": Refused(
        "the InSPO objectives use the reverse-KL log-ratios of DPO; f-DPO's divergences are not implemented"
    ),
    "f_alpha_divergence_coef": Refused(
        "used only by f_divergence_type alpha_divergence, which InSPO refuses"
    ),
    "label_smoothing": Honoured("ε of loss_type robust (InSPOOptions refuses it with any other loss type)"),
    "beta": Honoured("β of every InSPO objective; also IPO's τ and ORPO's λ unless ipo_tau/orpo_lambda"),
    "use_weighting": Refused(
        "WPO weighting by the policy's length-normalised probabilities is not implemented for the "
        "reflective log-probs"
    ),
    "discopop_tau": Refused("τ of TRL's loss_type discopop, which is not an InSPO objective"),
    "activation_offloading": Honoured(
        "TRL's training_step wraps the InSPO loss (reflective forward included) in the offloading context"
    ),
    "sync_ref_model": Honoured(
        "TR-DPO: TRL's callback mixes the policy into the reference model InSPO reads"
    ),
    "ref_model_mixup_alpha": Honoured(
        "α of the reference sync: π_ref ← α π_θ + (1−α) π_ref", only_with=("sync_ref_model", True)
    ),
    "ref_model_sync_steps": Honoured("steps between reference syncs", only_with=("sync_ref_model", True)),
    "pad_token": Refused(
        "deprecated by TRL and unused with InSPO's collator, which pads with the tokenizer's pad token; "
        "set tokenizer.pad_token instead"
    ),
}
"""``DPOConfig`` field → how InSPO treats it (every field ``DPOConfig`` adds to ``TrainingArguments``)."""


def dpo_default(name: str) -> Any:
    """The default of a ``DPOConfig`` field (what "unset" means for it)."""
    f = next(f for f in dataclasses.fields(DPOConfig) if f.name == name)
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return f.default


def check_dpo_options(config: Any, reference: str | None = None) -> None:
    """Refuse the ``DPOConfig`` options of ``config`` that an InSPO run would otherwise ignore.

    ``config`` is an :class:`~inspo_plugin.trl.InSPOConfig` or any ``DPOConfig`` that carries the
    InSPO options elsewhere (Axolotl's training arguments); ``reference`` is then the InSPO
    ``reference`` option (default: ``config.reference``).

    Raises:
        OptionError: ``<option>: <problem>``, naming the option, its value and why.
    """
    for name, verdict in DPO_OPTIONS.items():
        value = getattr(config, name)
        if _one(value) == _one(dpo_default(name)):
            continue
        if isinstance(verdict, Refused):
            raise OptionError(f"{name}: {value!r} is not supported by InSPO; {verdict.reason}")
        if verdict.only_with is not None:
            other, needed = verdict.only_with
            if _one(getattr(config, other)) != needed:
                raise OptionError(
                    f"{name}: {value!r} acts only with {other}={needed!r} "
                    f"(got {_one(getattr(config, other))!r}); unset it or set {other}"
                )


def _one(value: Any) -> Any:
    """TRL stores ``loss_type`` as a one-element list; compare its element."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value
