"""Axolotl integration: ``plugins: [inspo_plugin.InSPOPlugin]`` and ``rl: inspo``.

Axolotl 0.21's ``rl`` is a closed enum, so :meth:`InSPOPlugin.register` rewrites the raw YAML before
validation: ``rl: inspo`` becomes ``rl: dpo`` (every DPO code path then applies: reference model,
LoRA with the adapter disabled as reference, precomputed reference log-probs, DeepSpeed, FSDP2),
``trainer_cls`` points at the InSPO trainer, and the ``inspo:`` block is marked active. Runs that
do not ask for InSPO are left untouched, also when the plugin is loaded through the
``axolotl.plugins`` entry point for every run.

Only ``axolotl.integrations.base`` is imported here; trainer modules are imported when Axolotl
builds the trainer (``inspo_plugin.axolotl_trainer``), after its training-args mixins are merged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Literal

from axolotl.integrations.base import BasePlugin
from pydantic import BaseModel, ConfigDict, Field, model_validator

from inspo_plugin import __version__

logger = logging.getLogger(__name__)

TRAINER_CLS = "inspo_plugin.axolotl_trainer.AxolotlInSPOTrainer"
DEFAULT_PREPARED_PATH = "last_run_prepared"


class InSPOBlock(BaseModel):
    """The ``inspo:`` block of an Axolotl config. β comes from ``rl_beta``."""

    model_config = ConfigDict(extra="forbid")

    loss_type: Literal["sigmoid", "one_sided", "ipo", "hinge", "robust", "rdpo", "simpo", "orpo"] = Field(
        "sigmoid", description="InSPO objective on top of the DPO family."
    )
    template: Literal["revise", "concat", "custom"] = Field(
        "revise", description="How the alternative is shown."
    )
    reflection_prompt: str | None = Field(None, description="Reflection user message (template: custom).")
    reference: Literal["unconditional", "conditional"] = Field(
        "unconditional", description="π_ref(y|x) (the paper) or π_ref(y|x,y') (ablation)."
    )
    uncond_weight: float = Field(0.0, ge=0, description="Weight of the same loss on π_θ(y|x).")
    sft_weight: float = Field(0.0, ge=0, description="Weight of the chosen response's mean NLL.")
    label_smoothing: float = Field(0.0, ge=0, lt=0.5, description="ε of the robust loss.")
    ipo_tau: float = Field(0.1, gt=0, description="IPO τ (target margin 1/(2τ)).")
    rdpo_alpha: float = Field(0.01, description="R-DPO length coefficient α.")
    simpo_gamma: float = Field(0.5, description="SimPO target margin γ.")
    orpo_lambda: float = Field(0.1, ge=0, description="ORPO odds-ratio weight λ.")
    on_invalid_row: Literal["error", "skip"] = Field(
        "error", description="Stop at a bad row, or drop and report."
    )
    field_prompt: str = Field("prompt", description="Column of the prompt (string or messages).")
    field_chosen: str = Field("chosen", description="Column of the preferred answer (string or messages).")
    field_rejected: str = Field("rejected", description="Column of the dispreferred answer.")
    field_system: str = Field("system", description="Optional column with a system message.")
    field_question: str = Field("question", description="Prompt column used when field_prompt is absent.")

    @model_validator(mode="before")
    @classmethod
    def _name_unknown_keys(cls, data: Any) -> Any:
        # pydantic's own message says only "Extra inputs are not permitted"; list the valid keys.
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(
                    f"unknown key(s) in the inspo: block: {', '.join(unknown)}. "
                    f"Valid keys: {', '.join(cls.model_fields)}"
                )
        return data

    @model_validator(mode="after")
    def _check_template(self) -> InSPOBlock:
        if self.template == "custom" and not (self.reflection_prompt or "").strip():
            raise ValueError("inspo.template: custom needs inspo.reflection_prompt")
        if self.template != "custom" and self.reflection_prompt is not None:
            raise ValueError("inspo.reflection_prompt is only used with inspo.template: custom")
        return self


class InSPOArgs(BaseModel):
    """Config fields the plugin adds to Axolotl's schema."""

    inspo: InSPOBlock | None = None
    inspo_enabled: bool | None = Field(
        None, description="Set by the plugin when rl: inspo; do not set by hand."
    )


def options_digest(block: dict[str, Any]) -> str:
    """Short hash of the InSPO options, folded into the prepared-dataset path."""
    payload = json.dumps({"version": __version__, "inspo": block}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


class InSPOPlugin(BasePlugin):  # type: ignore[misc]
    """InSPO for Axolotl: ``rl: inspo`` plus an ``inspo:`` block.

    Hooks used: ``get_input_args`` (the ``inspo:`` schema) and ``register`` (the config rewrite). The
    trainer is selected through ``trainer_cls`` because Axolotl's RL builder constructs a class
    returned by ``get_trainer_cls`` without its model.
    """

    def get_input_args(self) -> str:
        return "inspo_plugin.plugin.InSPOArgs"

    def register(self, cfg: dict[str, Any]) -> None:
        register_inspo(cfg)


def register_inspo(cfg: dict[str, Any]) -> None:
    """Rewrite a raw Axolotl config dict for InSPO. Idempotent; a no-op for other runs."""
    rl = cfg.get("rl")
    if cfg.get("inspo_enabled"):
        return  # already rewritten (each accelerate worker re-runs load_cfg on the original YAML)
    if rl != "inspo":
        if cfg.get("inspo") is not None:
            logger.warning("InSPO: the inspo: block is ignored because rl is %r, not 'inspo'", rl)
        return
    block = cfg.get("inspo") or {}
    InSPOBlock.model_validate(block)  # fail early, before Axolotl's schema error about `rl`
    cfg["rl"] = "dpo"
    cfg["inspo_enabled"] = True
    cfg["inspo"] = dict(block)
    if not cfg.get("trainer_cls"):
        cfg["trainer_cls"] = TRAINER_CLS
    elif cfg["trainer_cls"] != TRAINER_CLS:
        logger.warning(
            "InSPO: trainer_cls is set to %s; it must combine InSPOTrainerMixin with the DPO trainer",
            cfg["trainer_cls"],
        )
    # Axolotl's default drops every pair whose prompt + answer exceeds sequence_len and logs only a
    # count. InSPO truncates answers itself (keeping prompt and bridge) and reports each row it drops.
    cfg.setdefault("excess_length_strategy", "truncate")
    # Axolotl's prepared-dataset hash ignores plugin options: keep one prepared copy per option set.
    base = cfg.get("dataset_prepared_path") or DEFAULT_PREPARED_PATH
    cfg["dataset_prepared_path"] = f"{str(base).rstrip('/')}/inspo-{options_digest(cfg['inspo'])}"
    logger.info(
        "InSPO: rl: inspo → DPO path with %s (loss_type=%s, template=%s)",
        cfg["trainer_cls"],
        block.get("loss_type", "sigmoid"),
        block.get("template", "revise"),
    )
