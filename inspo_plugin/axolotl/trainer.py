"""The InSPO trainer as Axolotl builds it: Axolotl's DPO trainer with the InSPO mix-in.

Imported by Axolotl's RL builder through ``trainer_cls`` (set by the plugin), after Axolotl has
merged its training-argument mix-ins. The options come from the training arguments
(``args.inspo_options()``, filled by the plugin's ``get_training_args``), as for the plain-TRL trainer.
"""

from __future__ import annotations

from typing import ClassVar

from axolotl.core.trainers.dpo.trainer import AxolotlDPOTrainer

from inspo_plugin.trl.trainer import InSPOTrainerMixin


class AxolotlInSPOTrainer(InSPOTrainerMixin, AxolotlDPOTrainer):
    """Axolotl's DPO trainer (optimizers, schedulers, DeepSpeed/FSDP helpers) computing InSPO."""

    tag_names: ClassVar[list[str]] = ["axolotl", "inspo"]
