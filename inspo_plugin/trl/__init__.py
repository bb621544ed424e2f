"""InSPO on TRL: :class:`InSPOConfig` (TRL's ``DPOConfig`` plus the InSPO options) and
:class:`InSPOTrainer` (TRL's ``DPOTrainer`` computing the InSPO objective).

Importing this package imports TRL; the core (:mod:`inspo_plugin.core`) does not.
"""

try:
    import trl  # noqa: F401
except ModuleNotFoundError as err:  # the core installs without TRL; say which extra brings it
    raise ModuleNotFoundError(
        f"{err.name} is not installed: InSPOConfig and InSPOTrainer need TRL; "
        'pip install "inspo-plugin[trl]" (or "inspo-plugin[axolotl]" for Axolotl)',
        name=err.name,
    ) from err

from inspo_plugin.trl.config import InSPOConfig
from inspo_plugin.trl.trainer import InSPOTrainer, InSPOTrainerMixin

__all__ = ["InSPOConfig", "InSPOTrainer", "InSPOTrainerMixin"]
