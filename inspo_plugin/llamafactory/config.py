"""The InSPO part of a LLaMA-Factory training YAML: a DPO config plus an ``inspo:`` block.

Spelling: ``stage: dpo`` and an ``inspo:`` block (``inspo: {}`` takes every default). LLaMA-Factory's
own DPO keys keep their meaning and feed InSPO's options:

==========================  =================================================================
LLaMA-Factory key           InSPO option
==========================  =================================================================
``pref_loss``               ``loss_type`` (sigmoid, hinge, ipo, orpo, simpo; ``kto_pair`` refused)
``pref_beta``               ``beta``
``pref_ftx``                ``sft_weight`` (mean NLL of the chosen answer given x)
``dpo_label_smoothing``     ``label_smoothing``; with ``pref_loss: sigmoid`` it selects ``robust``
``simpo_gamma``             ``simpo_gamma``
==========================  =================================================================

InSPO's own loss types without a LLaMA-Factory name (``one_sided``, ``rdpo``) are chosen with
``inspo.loss_type``; every other InSPO option goes in the block. ``pref_loss: inspo`` is refused
with a message showing the block spelling, and so is every LLaMA-Factory DPO option InSPO cannot
honour (:data:`REFUSED`).

This module is framework-free (it reads mappings; LLaMA-Factory parses the rest of the YAML).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from inspo_plugin.options import InSPOOptions, OptionError

BLOCK = "inspo"
"""The YAML key of the InSPO block."""

LF_KEYS: dict[str, str] = {
    "beta": "pref_beta",
    "sft_weight": "pref_ftx",
    "label_smoothing": "dpo_label_smoothing",
    "simpo_gamma": "simpo_gamma",
}
"""InSPO option → the LLaMA-Factory key that sets it (and that the block must not repeat)."""

LF_DEFAULTS: dict[str, Any] = {
    "pref_beta": 0.1,
    "pref_ftx": 0.0,
    "dpo_label_smoothing": 0.0,
    "simpo_gamma": 0.5,
    "pref_loss": "sigmoid",
}
"""LLaMA-Factory 0.9.5's defaults of the keys read here (``hparams/finetuning_args.py``)."""

PREF_LOSSES: dict[str, str] = {
    "sigmoid": "sigmoid",
    "hinge": "hinge",
    "ipo": "ipo",
    "orpo": "orpo",
    "simpo": "simpo",
}
"""LLaMA-Factory ``pref_loss`` → InSPO ``loss_type``."""

BLOCK_LOSS_TYPES: tuple[str, ...] = ("one_sided", "rdpo")
"""InSPO loss types without a LLaMA-Factory ``pref_loss`` name: set with ``inspo.loss_type``."""

REFUSED: dict[str, str] = {
    "pref_bco_weight": "BCO's running reward baseline is not an InSPO objective",
    "ld_alpha": "LD-DPO re-weights the tokens of one DPO sequence; InSPO scores reflective sequences",
    "use_ray": "Ray starts its own workers, which would run LLaMA-Factory's DPO trainer, not InSPO's",
    "use_mca": "the Megatron-core DPO path does not use LLaMA-Factory's DPO trainer",
    "streaming": "InSPO numbers every row to report dropped rows, which needs a map-style dataset",
    "use_kt": "the KTransformers path has its own trainer",
    "use_hyper_parallel": "the hyper-parallel path has its own trainer",
}
"""LLaMA-Factory options InSPO cannot honour (refused when set to anything but their default) → why."""


class ConfigError(ValueError):
    """A LLaMA-Factory InSPO config that cannot be trained; the message names the key."""


def split_config(config: Mapping[str, Any], where: str = "config") -> tuple[dict[str, Any], InSPOOptions]:
    """Split a LLaMA-Factory YAML (as a mapping) into LLaMA-Factory's arguments and the InSPO options.

    Args:
        config: the whole YAML, ``inspo:`` block included.
        where: the file name, for messages.

    Returns:
        The arguments for LLaMA-Factory (the block removed) and the checked InSPO options.

    Raises:
        ConfigError: the config asks for something InSPO on LLaMA-Factory cannot do; the message names
            the key and what to write instead.
    """
    args = dict(config)
    pref_loss = args.get("pref_loss", LF_DEFAULTS["pref_loss"])
    if pref_loss == BLOCK:
        raise ConfigError(
            f"{where}: pref_loss: inspo is not how InSPO is switched on. Keep stage: dpo and pref_loss "
            f"as LLaMA-Factory defines it ({', '.join(PREF_LOSSES)}: the objective InSPO applies to the "
            "reflective pairs) and add an `inspo:` block, e.g. `inspo: {}` for every default"
        )
    if BLOCK not in args:
        raise ConfigError(
            f"{where}: no `inspo:` block. InSPO is switched on by an `inspo:` block next to stage: dpo "
            "(`inspo: {}` takes every default); for plain DPO use llamafactory-cli train"
        )
    block = args.pop(BLOCK)
    block = {} if block is None else block
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where}: inspo: expected a mapping of InSPO options, got {type(block).__name__}")
    block = dict(block)
    if args.get("stage") != "dpo":
        raise ConfigError(
            f"{where}: stage: InSPO runs on LLaMA-Factory's DPO stage; set stage: dpo (got {args.get('stage')!r})"
        )
    _refuse_unsupported(args, where)
    options = _options(args, block, pref_loss, where)
    if options.on_nonfinite == "skip":
        raise ConfigError(
            f"{where}: inspo.on_nonfinite: skip is not supported by the LLaMA-Factory adapter (a step with a "
            "NaN/Inf loss or gradient stops the run, naming the step and rows); use on_nonfinite: stop"
        )
    if options.reference == "conditional" and pref_loss in ("orpo", "simpo"):
        raise ConfigError(
            f"{where}: inspo.reference: conditional needs a reference model, and LLaMA-Factory trains "
            f"pref_loss: {pref_loss} without one; use reference: unconditional"
        )
    return args, options


def _refuse_unsupported(args: Mapping[str, Any], where: str) -> None:
    if args.get("pref_loss") == "kto_pair":
        raise ConfigError(
            f"{where}: pref_loss: kto_pair is not an InSPO objective; InSPO objectives: "
            f"{', '.join(PREF_LOSSES)} (pref_loss) or {', '.join(BLOCK_LOSS_TYPES)} (inspo.loss_type)"
        )
    for key, why in REFUSED.items():
        value = args.get(key)
        if value not in (None, False, 0, 0.0):
            raise ConfigError(f"{where}: {key}: not supported with InSPO ({why})")


def _options(args: Mapping[str, Any], block: dict[str, Any], pref_loss: Any, where: str) -> InSPOOptions:
    valid = [n for n in InSPOOptions.names() if n not in LF_KEYS]
    for key in block:
        if key in LF_KEYS:
            raise ConfigError(
                f"{where}: inspo.{key}: set it with LLaMA-Factory's {LF_KEYS[key]}, not in the inspo: block"
            )
        if key not in valid:
            raise ConfigError(f"{where}: inspo.{key}: unknown option. Valid options: {', '.join(valid)}")
    smoothing = args.get("dpo_label_smoothing", LF_DEFAULTS["dpo_label_smoothing"])
    from_block = "loss_type" in block
    if from_block:
        loss_type = block.pop("loss_type")
        if loss_type in PREF_LOSSES:
            raise ConfigError(
                f"{where}: inspo.loss_type: {loss_type} is LLaMA-Factory's pref_loss: {loss_type}; set it there"
            )
        if loss_type == "robust":
            raise ConfigError(
                f"{where}: inspo.loss_type: robust is LLaMA-Factory's cDPO: pref_loss: sigmoid with "
                "dpo_label_smoothing: ε; set those"
            )
        if "pref_loss" in args and args["pref_loss"] != "sigmoid":
            raise ConfigError(
                f"{where}: inspo.loss_type: {loss_type!r} and pref_loss: {args['pref_loss']} both choose "
                f"the objective; remove pref_loss (InSPO-only loss types: {', '.join(BLOCK_LOSS_TYPES)})"
            )
        if smoothing:
            raise ConfigError(
                f"{where}: dpo_label_smoothing: only used by pref_loss: sigmoid (inspo.loss_type is {loss_type!r})"
            )
    elif pref_loss in PREF_LOSSES:
        loss_type = "robust" if pref_loss == "sigmoid" and smoothing else PREF_LOSSES[pref_loss]
    else:
        raise ConfigError(f"{where}: pref_loss: {pref_loss!r} is not one of {', '.join(PREF_LOSSES)}")
    values = {
        **block,
        "loss_type": loss_type,
        "beta": args.get("pref_beta", LF_DEFAULTS["pref_beta"]),
        "sft_weight": args.get("pref_ftx", LF_DEFAULTS["pref_ftx"]),
        "label_smoothing": smoothing if loss_type == "robust" else 0.0,
        "simpo_gamma": args.get("simpo_gamma", LF_DEFAULTS["simpo_gamma"]),
    }
    try:
        return InSPOOptions.from_mapping(values, where=BLOCK)
    except OptionError as err:
        message = str(err)
        for option, lf_key in LF_KEYS.items():
            if message.startswith(f"{BLOCK}.{option}:"):
                message = lf_key + message[len(f"{BLOCK}.{option}") :]
        if message.startswith(f"{BLOCK}.loss_type:") and not from_block:
            message = "pref_loss" + message[len(f"{BLOCK}.loss_type") :]
        raise ConfigError(f"{where}: {message}") from None
