"""Preference data shipped with the package.

``ifeval_prefs``: verifiable-instruction preference pairs answered by SmolLM2-135M-Instruct
(see ``inspo_plugin/data/ifeval_prefs/README.md`` for the data card and
``scripts/make_preference_data.py`` for how it is built). Each row has ``id``, ``prompt``,
``chosen``, ``rejected``, ``constraint`` (``{"kind", "params"}``), ``chosen_source``,
``rejected_source``, ``task`` and, in the test split, ``heldout`` and ``split_reason``.

:func:`load_preference_rows` reads held-out rows for evaluation: a ``.jsonl`` file, or by default
the shipped test split.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["BUILTIN_DATASETS", "builtin_preferences_path", "load_builtin_preferences", "load_preference_rows"]

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
    return _read_jsonl(builtin_preferences_path(split, name))


def load_preference_rows(
    path: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Held-out preference rows: those of the ``.jsonl`` file ``path`` (one JSON object a line,
    blank lines skipped) or, when ``path`` is None, the shipped test split; only the first
    ``limit`` rows when ``limit`` is given (0 or None: all)."""
    rows = load_builtin_preferences("test") if path is None else _read_jsonl(Path(path))
    return rows[:limit] if limit else rows


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as error:
                    raise ValueError(f"{path}:{n} is not valid JSON: {error}") from error
    return rows
