"""Preference data shipped with the package.

``ifeval_prefs``: verifiable-instruction preference pairs answered by SmolLM2-135M-Instruct
(see ``inspo_plugin/data/ifeval_prefs/README.md`` for the data card and
``scripts/make_preference_data.py`` for how it is built). Each row has ``id``, ``prompt``,
``chosen``, ``rejected``, ``constraint`` (``{"kind", "params"}``), ``chosen_source``,
``rejected_source``, ``task`` and, in the test split, ``heldout`` and ``split_reason``.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["BUILTIN_DATASETS", "builtin_preferences_path", "load_builtin_preferences"]

BUILTIN_DATASETS = ("ifeval_prefs",)
_SPLITS = ("train", "test")


def builtin_preferences_path(split: str, name: str = "ifeval_prefs") -> Path:
    """Filesystem path of a shipped split (for tools that want a file, such as Axolotl's ``path:``)."""
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown built-in data set {name!r}; available: {', '.join(BUILTIN_DATASETS)}")
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; available: {', '.join(_SPLITS)}")
    resource = resources.files("inspo_plugin") / "data" / name / f"{split}.jsonl"
    path = Path(str(resource))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the package was installed without its data files "
            "(rebuild them with scripts/make_preference_data.py)"
        )
    return path


def load_builtin_preferences(split: str, name: str = "ifeval_prefs") -> list[dict[str, Any]]:
    """All rows of a shipped preference split (``"train"`` or ``"test"``), in file order."""
    path = builtin_preferences_path(split, name)
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as error:
                    raise ValueError(f"{path}:{n} is not valid JSON: {error}") from error
    return rows
