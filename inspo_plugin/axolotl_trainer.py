"""The InSPO trainer as Axolotl builds it: Axolotl's DPO trainer with the InSPO mix-in.

Imported by Axolotl's RL builder through ``trainer_cls`` (set by the plugin), after Axolotl has
merged its training-argument mix-ins. The InSPO options come from the validated config that Axolotl
hands to the plugin manager; β is ``rl_beta`` (TRL's ``beta``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from axolotl.core.trainers.dpo.trainer import AxolotlDPOTrainer
from axolotl.integrations.base import PluginManager

from inspo_plugin.trainer import InSPOSettings, InSPOTrainerMixin


def settings_from_block(block: Any, beta: float) -> InSPOSettings:
    """Build trainer settings from an ``inspo:`` block (dict or validated model) and β."""
    from inspo_plugin.plugin import InSPOBlock

    b = block if isinstance(block, InSPOBlock) else InSPOBlock.model_validate(dict(block or {}))
    return InSPOSettings.from_options(b.model_dump(), beta=beta)


class AxolotlInSPOTrainer(InSPOTrainerMixin, AxolotlDPOTrainer):  # type: ignore[misc]
    """Axolotl's DPO trainer (optimizers, schedulers, DeepSpeed/FSDP helpers) computing InSPO."""

    tag_names: ClassVar[list[str]] = ["axolotl", "inspo"]

    def resolve_inspo_settings(self, args: Any) -> InSPOSettings:
        cfg = PluginManager.get_instance().cfg
        if cfg is None or not cfg.get("inspo_enabled"):
            raise RuntimeError(
                "AxolotlInSPOTrainer runs only with `rl: inspo` and `plugins: [inspo_plugin.InSPOPlugin]`"
            )
        return settings_from_block(cfg.get("inspo"), beta=args.beta)
