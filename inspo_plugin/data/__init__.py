"""Preference data shipped with the package.

``ifeval_prefs``: verifiable-instruction preference pairs answered by SmolLM2-135M-Instruct
(see ``inspo_plugin/data/ifeval_prefs/README.md`` for the data card and
``scripts/make_preference_data.py`` for how it is built). Each row has ``id``, ``prompt``,
``chosen``, ``rejected``, ``constraint`` (``{"kind", "params"}``), ``chosen_source``,
``rejected_source``, ``task`` and, in the test split, ``heldout`` and ``split_reason``.

Variants (``load_builtin_preferences(split, variant=...)``):

- ``mixed`` (default): ``train.jsonl`` / ``test.jsonl`` as built, where a prompt whose samples all
  landed on one side of the check has its other answer made by editing a sample;
- ``edited``: the rows of ``mixed`` where one answer is such an edit;
- ``natural``: both answers sampled, never edited. ``train``: ``train_natural.jsonl``, built from its
  own, larger sample (several answers per prompt, up to a few distinct pairs per prompt); ``test``:
  the rows of the ``mixed`` test split whose answers were both sampled.

:func:`load_preference_rows` reads held-out rows for evaluation: a ``.jsonl`` file, or by default
the shipped test split.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = [
    "BUILTIN_DATASETS",
    "VARIANTS",
    "builtin_preferences_path",
    "is_edited",
    "load_builtin_preferences",
    "load_preference_rows",
]

BUILTIN_DATASETS = ("ifeval_prefs",)
VARIANTS = ("mixed", "edited", "natural")
_SPLITS = ("train", "test")
_FILES = {("train", "natural"): "train_natural"}
NATURAL_BUILD_COMMAND = (
    "python scripts/make_preference_data.py --natural-only --samples 5 --pairs-per-prompt 2"
)
"""(split, variant) → the file of a variant that has its own file; the others filter the mixed file."""


def builtin_preferences_path(split: str, name: str = "ifeval_prefs", variant: str = "mixed") -> Path:
    """Filesystem path of a shipped split (for tools that want a file, such as Axolotl's ``path:``).

    Only files that exist as such: ``mixed`` splits and the ``natural`` train split; the other
    variants are filters of a mixed file (use :func:`load_builtin_preferences`).
    """
    if name not in BUILTIN_DATASETS:
        raise ValueError(f"unknown built-in data set {name!r}; available: {', '.join(BUILTIN_DATASETS)}")
    if split not in _SPLITS:
        raise ValueError(f"unknown split {split!r}; available: {', '.join(_SPLITS)}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; available: {', '.join(VARIANTS)}")
    stem = split if variant == "mixed" else _FILES.get((split, variant))
    if stem is None:
        raise ValueError(
            f"variant {variant!r} of split {split!r} has no file of its own (it filters {split}.jsonl); "
            "load it with load_builtin_preferences"
        )
    resource = resources.files("inspo_plugin") / "data" / name / f"{stem}.jsonl"
    path = Path(str(resource))
    if not path.is_file() and (split, variant) in _FILES:
        raise FileNotFoundError(
            f"{path} is not built yet: the {variant!r} {split} split comes from "
            f"`{NATURAL_BUILD_COMMAND}` (about an hour on an idle 2-core CPU); the {split} rows of "
            "variant 'mixed' and 'edited' ship with the package"
        )
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: the package was installed without its data files "
            "(rebuild them with scripts/make_preference_data.py)"
        )
    return path


def load_builtin_preferences(
    split: str, name: str = "ifeval_prefs", variant: str = "mixed"
) -> list[dict[str, Any]]:
    """All rows of a shipped preference split (``"train"`` or ``"test"``) in one of the
    :data:`VARIANTS` (see the module docstring), in file order."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; available: {', '.join(VARIANTS)}")
    if variant == "mixed" or (split, variant) in _FILES:
        return _read_jsonl(builtin_preferences_path(split, name, variant))
    rows = _read_jsonl(builtin_preferences_path(split, name))
    return [row for row in rows if is_edited(row) == (variant == "edited")]


def is_edited(row: dict[str, Any]) -> bool:
    """Whether either answer of a shipped row is an edit (``chosen_source``/``rejected_source``)."""
    return "edited" in (row["chosen_source"], row["rejected_source"])


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
