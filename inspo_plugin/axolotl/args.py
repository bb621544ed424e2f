"""The Axolotl face of the InSPO options: the ``inspo:`` block, its schema entry and the training-args mix-in.

The block holds the InSPO options of :class:`~inspo_plugin.options.InSPOOptions` except β (Axolotl's
``rl_beta``), plus the column names of ``type: inspo_plugin.reflective`` (``field_prompt``, …, from
:class:`~inspo_plugin.core.rows.RowFields`). :func:`read_block` is the one place it is checked.

The options reach the trainer through its training arguments: the plugin's
``get_training_args_mixin`` adds :class:`InSPOTrainingArgsMixin` (one field, ``inspo``) to Axolotl's
training-argument classes and ``get_training_args`` fills it for ``rl: inspo`` runs; the trainer
calls ``args.inspo_options()``, exactly as it does with TRL's :class:`~inspo_plugin.trl.InSPOConfig`.

This module imports neither Axolotl nor TRL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

from inspo_plugin.core.rows import RowFields
from inspo_plugin.options import InSPOOptions, OptionError

SET_ELSEWHERE = {"beta": "rl_beta"}
"""InSPO options that an Axolotl config sets with its own keys."""
FIELD_PREFIX = "field_"
DATA_FIELDS = tuple(FIELD_PREFIX + f.name for f in dataclasses.fields(RowFields))
BLOCK_KEYS = tuple(n for n in InSPOOptions.names() if n not in SET_ELSEWHERE) + DATA_FIELDS
"""Every key the ``inspo:`` block accepts."""


# Axolotl's DPO keys that InSPO cannot honour, refused when set: key → (the value that means "unset"
# besides null, why). Every other DPO key keeps its DPO meaning (rl_beta/trl.beta → β, sequence_len →
# max_length, precompute_ref_log_probs, the reference model, LoRA with the adapter off as reference).
REFUSED_DPO_KEYS: dict[str, tuple[Any, str]] = {
    "dpo_loss_type": (None, "InSPO's objective is inspo.loss_type"),
    "dpo_loss_weights": (None, "InSPO trains one objective (inspo.loss_type), so there is nothing to weight"),
    "dpo_label_smoothing": (0.0, "set inspo.label_smoothing (ε of inspo.loss_type: robust) instead"),
    "dpo_use_weighting": (False, "WPO weighting is not implemented for the reflective log-probs"),
    "dpo_ld_alpha": (
        None,
        "LD-DPO would have to re-weight the reflective policy log-probs too; not implemented",
    ),
    "dpo_padding_free": (
        False,
        "the reflective sequences are padded per batch; padding-free is not implemented",
    ),
    "dpo_use_liger_kernel": (False, "Liger's chunked DPO loss computes DPO, not InSPO"),
    "simpo_gamma": (None, "set inspo.simpo_gamma (with inspo.loss_type: simpo) instead"),
    "cpo_alpha": (None, "not an InSPO option; for an NLL term on the chosen answer set inspo.sft_weight"),
    "orpo_alpha": (None, "set rl_beta (β) and inspo.loss_type: orpo; λ is inspo.orpo_lambda"),
}


def refuse_dpo_keys(cfg: Mapping[str, Any]) -> None:
    """Refuse the DPO keys of an ``rl: inspo`` config that InSPO would otherwise silently ignore.

    Raises:
        OptionError: naming the key, why, and what to set instead.
    """
    for key, (unset, why) in REFUSED_DPO_KEYS.items():
        value = cfg.get(key)
        if value is not None and value != unset:
            raise OptionError(f"{key}: {value!r} is not supported with rl: inspo; {why}")


def read_block(block: Mapping[str, Any] | None, beta: float | None = None) -> tuple[InSPOOptions, RowFields]:
    """Check an ``inspo:`` block; returns its options (β = ``beta``, or the default) and column names.

    Raises:
        OptionError: ``inspo.<key>: <problem>``; an unknown key lists the valid ones.
    """
    values = dict(block or {})
    for key in values:
        if key not in BLOCK_KEYS and key not in SET_ELSEWHERE:
            raise OptionError(f"inspo.{key}: unknown option. Valid options: {', '.join(BLOCK_KEYS)}")
    columns: dict[str, str] = {}
    for key in DATA_FIELDS:
        if key in values:
            value = values.pop(key)
            if not isinstance(value, str) or not value.strip():
                raise OptionError(f"inspo.{key}: expected a column name, got {value!r}")
            columns[key.removeprefix(FIELD_PREFIX)] = value
    options = InSPOOptions.from_mapping(values, where="inspo", elsewhere=SET_ELSEWHERE)
    if beta is not None:
        options = dataclasses.replace(options, beta=float(beta))
    return options, RowFields(**columns)


def normalized_block(block: Mapping[str, Any] | None) -> dict[str, Any]:
    """The block with every key present (defaults filled in), as stored in the validated config."""
    options, fields = read_block(block)
    values = {k: v for k, v in options.to_dict().items() if k not in SET_ELSEWHERE}
    values.update({FIELD_PREFIX + f.name: getattr(fields, f.name) for f in dataclasses.fields(RowFields)})
    return values


def _block_help() -> str:
    lines = ["InSPO options (rl: inspo). β is rl_beta."]
    for f in dataclasses.fields(InSPOOptions):
        if f.name not in SET_ELSEWHERE:
            lines.append(f"{f.name} (default {f.default!r}): {f.metadata['help']}")
    for f in dataclasses.fields(RowFields):
        lines.append(f"{FIELD_PREFIX}{f.name} (default {f.default!r}): {f.metadata['help']}")
    return "\n".join(lines)


class InSPOArgs(BaseModel):
    """Config keys the plugin adds to Axolotl's schema (``get_input_args``).

    The block stays a mapping here: it is checked by :func:`read_block` when the plugin rewrites an
    ``rl: inspo`` config, before Axolotl's own validation, so that its errors name the InSPO key.
    """

    inspo: dict[str, Any] | None = Field(None, description=_block_help())
    inspo_enabled: bool | None = Field(
        None, description="Set by the plugin when rl: inspo; do not set by hand."
    )


@dataclass
class InSPOTrainingArgsMixin:
    """Training-argument field of the InSPO options in Axolotl runs (``get_training_args_mixin``)."""

    inspo: dict[str, Any] | None = dataclasses.field(
        default=None,
        metadata={"help": "The inspo: block of an rl: inspo run (set by the plugin); None in other runs."},
    )

    def inspo_options(self) -> InSPOOptions:
        """The InSPO options of this run; β is the DPO ``beta`` (Axolotl's ``rl_beta``)."""
        if self.inspo is None:
            raise OptionError(
                "this run carries no InSPO options: use rl: inspo with plugins: [inspo_plugin.InSPOPlugin]"
            )
        options, _ = read_block(self.inspo, beta=getattr(self, "beta", None))
        return options
