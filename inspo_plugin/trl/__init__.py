"""InSPO on TRL: :class:`InSPOConfig` (TRL's ``DPOConfig`` plus the InSPO options) and
:class:`InSPOTrainer` (TRL's ``DPOTrainer`` computing the InSPO objective).

Importing this package imports TRL; the core (:mod:`inspo_plugin.core`) does not.
"""

from inspo_plugin.trl.config import InSPOConfig
from inspo_plugin.trl.trainer import InSPOTrainer, InSPOTrainerMixin

__all__ = ["InSPOConfig", "InSPOTrainer", "InSPOTrainerMixin"]
