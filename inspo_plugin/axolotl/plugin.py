"""Axolotl integration: ``plugins: [inspo_plugin.InSPOPlugin]`` and ``rl: inspo``.

Axolotl 0.21's ``rl`` is a closed enum, so :meth:`InSPOPlugin.register` rewrites the raw YAML before
validation: ``rl: inspo`` becomes ``rl: dpo`` (every DPO code path then applies: reference model,
LoRA with the adapter disabled as reference, precomputed reference log-probs, DeepSpeed, FSDP2),
``trainer_cls`` points at the InSPO trainer, and the ``inspo:`` block is checked, completed with its
defaults and marked active. Runs that do not ask for InSPO are left untouched, also when the plugin
is loaded through the ``axolotl.plugins`` entry point for every run.

Only ``axolotl.integrations.base`` is imported here; the trainer module is imported when Axolotl
builds the trainer (``inspo_plugin.axolotl.trainer``), after its training-args mix-ins are merged.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from axolotl.integrations.base import BasePlugin

from inspo_plugin import __version__
from inspo_plugin.axolotl.args import normalized_block, refuse_dpo_keys

logger = logging.getLogger(__name__)

TRAINER_CLS = "inspo_plugin.axolotl.trainer.AxolotlInSPOTrainer"
DEFAULT_PREPARED_PATH = "last_run_prepared"


def options_digest(block: dict[str, Any]) -> str:
    """Short hash of the InSPO options, folded into the prepared-dataset path."""
    payload = json.dumps({"version": __version__, "inspo": block}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:10]


class InSPOPlugin(BasePlugin):  # type: ignore[misc]  # axolotl ships no type information
    """InSPO for Axolotl: ``rl: inspo`` plus an ``inspo:`` block.

    Hooks: ``register`` (the config rewrite), ``get_input_args`` (the ``inspo:`` schema entry),
    ``get_training_args_mixin`` / ``get_training_args`` (the options on the training arguments, where
    the trainer reads them). The trainer is selected through ``trainer_cls`` because Axolotl's RL
    builder constructs a class returned by ``get_trainer_cls`` without its model.
    """

    def get_input_args(self) -> str:
        return "inspo_plugin.axolotl.args.InSPOArgs"

    def get_training_args_mixin(self) -> str:
        return "inspo_plugin.axolotl.args.InSPOTrainingArgsMixin"

    def get_training_args(self, cfg: Any) -> dict[str, Any] | None:
        if not cfg.get("inspo_enabled"):
            return None
        return {"inspo": dict(cfg.get("inspo") or {})}

    def register(self, cfg: dict[str, Any]) -> None:
        register_inspo(cfg)

    def load_datasets(self, cfg: Any, preprocess: bool = False) -> None:
        """Check local JSON-lines files before Axolotl loads them (:mod:`inspo_plugin.axolotl.data_files`).

        Returns ``None``: Axolotl then loads the datasets itself.
        """
        if cfg.get("inspo_enabled"):
            from inspo_plugin.axolotl.data_files import check_data_files

            check_data_files(cfg)
        return None


def register_inspo(cfg: dict[str, Any]) -> None:
    """Rewrite a raw Axolotl config dict for InSPO. Idempotent; a no-op for other runs.

    Raises:
        OptionError: the ``inspo:`` block has an unknown key or a bad value, or the config sets a DPO
            key InSPO cannot honour (named in the message).
    """
    rl = cfg.get("rl")
    if cfg.get("inspo_enabled"):
        return  # already rewritten (each accelerate worker re-runs load_cfg on the original YAML)
    if rl != "inspo":
        if cfg.get("inspo") is not None:
            logger.warning("InSPO: the inspo: block is ignored because rl is %r, not 'inspo'", rl)
        return
    block = normalized_block(cfg.get("inspo"))  # fail early, before Axolotl's schema error about `rl`
    refuse_dpo_keys(cfg)
    cfg["rl"] = "dpo"
    cfg["inspo_enabled"] = True
    cfg["inspo"] = block
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
    cfg["dataset_prepared_path"] = f"{str(base).rstrip('/')}/inspo-{options_digest(block)}"
    logger.info(
        "InSPO: rl: inspo → DPO path with %s (loss_type=%s, template=%s)",
        cfg["trainer_cls"],
        block["loss_type"],
        block["template"],
    )
