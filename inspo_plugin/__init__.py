"""InSPO — Intrinsic Self-reflective Preference Optimization for Axolotl, TRL and LLaMA-Factory.

Paper: https://arxiv.org/abs/2512.23126

Public names are imported lazily so that ``import inspo_plugin`` stays cheap (Axolotl imports every
installed plugin at start-up) and the framework-free core needs neither TRL nor Axolotl.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["InSPOConfig", "InSPOPlugin", "InSPOTrainer", "__version__", "reflective"]

if TYPE_CHECKING:
    from inspo_plugin.plugin import InSPOPlugin
    from inspo_plugin.trainer import InSPOConfig, InSPOTrainer

_LAZY = {
    "InSPOConfig": "inspo_plugin.trainer",
    "InSPOTrainer": "inspo_plugin.trainer",
    "InSPOPlugin": "inspo_plugin.plugin",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inspo_plugin' has no attribute {name!r}")


def reflective(cfg: Any, dataset_idx: int = 0, **kwargs: Any) -> Any:
    """Axolotl dataset strategy ``type: inspo_plugin.reflective`` (see :mod:`inspo_plugin.strategy`)."""
    from inspo_plugin.strategy import load_reflective

    return load_reflective(cfg, dataset_idx=dataset_idx, **kwargs)
