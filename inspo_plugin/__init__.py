"""InSPO — Intrinsic Self-reflective Preference Optimization for Axolotl, TRL and LLaMA-Factory.

Paper: https://arxiv.org/abs/2512.23126

The package is layered; each layer imports only the ones above it in this list:

- :mod:`inspo_plugin.core` — framework-free: objectives, rows, reflective sequences, layout,
  collation, log-probs; :mod:`inspo_plugin.options` — every InSPO option, declared once;
- :mod:`inspo_plugin.trl` — :class:`InSPOConfig` / :class:`InSPOTrainer` on TRL;
- :mod:`inspo_plugin.axolotl` — the Axolotl plugin, dataset strategy and trainer;
- :mod:`inspo_plugin.evaluation`, :mod:`inspo_plugin.models`, :mod:`inspo_plugin.data` — evaluation,
  small offline models, shipped data; :mod:`inspo_plugin.cli` — the command line on top.

Public names are imported lazily so that ``import inspo_plugin`` stays cheap (Axolotl imports every
installed plugin at start-up) and the core needs neither TRL nor Axolotl. Axolotl resolves
``type: inspo_plugin.reflective`` as the attribute ``reflective`` of this package, so no sub-module
may be called ``reflective``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["InSPOConfig", "InSPOOptions", "InSPOPlugin", "InSPOTrainer", "__version__", "reflective"]

if TYPE_CHECKING:
    from inspo_plugin.axolotl.plugin import InSPOPlugin
    from inspo_plugin.options import InSPOOptions
    from inspo_plugin.trl import InSPOConfig, InSPOTrainer

_LAZY = {
    "InSPOConfig": "inspo_plugin.trl",
    "InSPOTrainer": "inspo_plugin.trl",
    "InSPOOptions": "inspo_plugin.options",
    "InSPOPlugin": "inspo_plugin.axolotl.plugin",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'inspo_plugin' has no attribute {name!r}")


def reflective(cfg: Any, dataset_idx: int = 0, **kwargs: Any) -> Any:
    """Axolotl dataset strategy ``type: inspo_plugin.reflective`` (see :mod:`inspo_plugin.axolotl.strategy`)."""
    from inspo_plugin.axolotl.strategy import load_reflective

    return load_reflective(cfg, dataset_idx=dataset_idx, **kwargs)
