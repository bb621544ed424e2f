"""The layering of the package: the core imports no framework, layers import only the layers below."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import inspo_plugin

PACKAGE = Path(inspo_plugin.__file__).parent
FRAMEWORKS = ("trl", "axolotl", "llamafactory", "transformers", "datasets", "accelerate", "peft", "deepspeed")

# Layer → the layers it may import (its own included). The framework-free base is `core` + `options`.
ALLOWED = {
    "core": {"core", "options"},
    "options": {"core", "options"},
    "offline": {"offline"},
    "data": {"data"},
    "models": {"models", "offline"},
    "trl": {"core", "options", "trl"},
    "axolotl": {"core", "options", "trl", "axolotl", "offline"},
    "llamafactory": {"core", "options", "llamafactory", "offline"},
    "evaluation": {"core", "options", "evaluation", "models", "data"},
    "cli": {"core", "options", "trl", "axolotl", "evaluation", "models", "data", "offline", "cli"},
}


def _layer(module_path: Path) -> str:
    return module_path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _inspo_imports(path: Path) -> set[str]:
    """The ``inspo_plugin`` layers a module imports (``import x`` and ``from x import y``, lazy ones too)."""
    layers = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "inspo_plugin" and len(parts) > 1:
                layers.add(parts[1])
    return layers


def _modules() -> list[Path]:
    return sorted(
        p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE or p.stem not in {"__init__", "__main__"}
    )


def test_every_module_belongs_to_a_known_layer():
    assert {_layer(p) for p in _modules()} == set(ALLOWED)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_a_layer_imports_only_the_layers_below_it(path):
    layer = _layer(path)
    assert _inspo_imports(path) <= ALLOWED[layer], (
        f"{path.relative_to(PACKAGE)} imports {_inspo_imports(path)}"
    )


def test_the_checker_sees_a_forbidden_import(tmp_path):
    bad = tmp_path / "objectives.py"
    bad.write_text("def f():\n    from inspo_plugin.trl.trainer import InSPOTrainer\n")
    assert "trl" in _inspo_imports(bad) and not _inspo_imports(bad) <= ALLOWED["core"]


BLOCKER = """
import importlib.abc, sys
BLOCKED = set(sys.argv[1].split(","))
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked framework import: {name}")
sys.meta_path.insert(0, Block())
"""


def _run_blocked(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code, ",".join(FRAMEWORKS)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_core_runs_with_every_framework_blocked():
    code = """
import pkgutil, importlib, torch
import inspo_plugin.core as core, inspo_plugin.options
for m in pkgutil.iter_modules(core.__path__):
    importlib.import_module(f"inspo_plugin.core.{m.name}")
from inspo_plugin.core.objectives import PolicyLogps, ReferenceLogps, inspo_loss
from inspo_plugin.options import InSPOOptions
lp = torch.tensor([-3.0, -4.0])
out = inspo_loss(PolicyLogps(lp, lp - 1, lp, lp - 2), ReferenceLogps(lp, lp), torch.ones(2), torch.ones(2),
                 InSPOOptions())
print("loss", round(out.losses.mean().item(), 6))
"""
    proc = _run_blocked(code)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "loss 0.598139" in proc.stdout  # −log σ(0.1 · 2) = log(1 + e^−0.2) for both pairs


def test_the_blocker_blocks():
    proc = _run_blocked("import inspo_plugin.trl")
    assert proc.returncode != 0 and "blocked framework import: trl" in proc.stderr


def test_public_import_paths_users_write():
    from inspo_plugin import InSPOConfig, InSPOOptions, InSPOPlugin, InSPOTrainer

    assert InSPOConfig.__module__ == "inspo_plugin.trl.config"
    assert InSPOTrainer.__module__ == "inspo_plugin.trl.trainer"
    assert InSPOPlugin.__module__ == "inspo_plugin.axolotl.plugin"
    assert issubclass(InSPOConfig, InSPOOptions)
    # Axolotl: `plugins: [inspo_plugin.InSPOPlugin]` and `type: inspo_plugin.reflective` resolve as
    # `<top-level module>.<attribute>`; no sub-module may shadow the strategy function.
    assert callable(importlib.import_module("inspo_plugin").reflective)
    assert not any(p.stem == "reflective" for p in PACKAGE.rglob("*.py"))
    entry = [e for e in importlib.metadata.entry_points(group="axolotl.plugins") if e.name == "inspo"]
    assert entry and entry[0].load() is InSPOPlugin


def test_the_version_has_one_source():
    assert importlib.metadata.version("inspo-plugin") == inspo_plugin.__version__
    pyproject = (PACKAGE.parent / "pyproject.toml").read_text()
    assert (
        'dynamic = ["version"]' in pyproject
        and "\nversion =" not in pyproject.split("[tool.setuptools.dynamic]")[0]
    )
