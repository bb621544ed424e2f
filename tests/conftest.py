"""Shared fixtures: tiny tokenizers and models built in-process (no download)."""

from __future__ import annotations

import os

from inspo_plugin.offline import apply_offline_defaults

apply_offline_defaults()  # before anything imports huggingface_hub, datasets or transformers

# `make test` runs the suite in TEST_WORKERS pytest-xdist processes. Each takes an equal share of the
# cores for its own torch and for the training subprocesses it starts (they inherit the variable):
# two workers with a full-width OpenMP pool each would oversubscribe the cores, and spinning OpenMP
# threads slow every process down. Set before torch is imported; a value the user set is kept.
_XDIST_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _XDIST_WORKERS > 1:
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _XDIST_WORKERS)))

import importlib.util  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from inspo_plugin.models.tiny import build_tiny_model, build_tiny_tokenizer  # noqa: E402


def _files_importing_axolotl() -> list[str]:
    """The test files that import Axolotl (or the package's Axolotl layer), lazily or not."""
    import ast

    def imports_axolotl(path: Path) -> bool:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(
                n.split(".")[0] == "axolotl" or n.startswith(("inspo_plugin.axolotl", "tests.axolotl"))
                for n in names
            ):
                return True
        return False

    here = Path(__file__).parent
    return sorted(p.name for p in here.glob("*.py") if p.name != "conftest.py" and imports_axolotl(p))


# Without Axolotl installed (the plain-TRL environment of `make test-trl-latest`), each file that imports
# it is skipped as a whole, with that reason in the summary (also when named on the command line), and
# the report header lists them; with Axolotl, nothing changes.
AXOLOTL_MISSING = importlib.util.find_spec("axolotl") is None
NEEDS_AXOLOTL = _files_importing_axolotl() if AXOLOTL_MISSING else []


class _NeedsAxolotl(pytest.Module):
    def collect(self):  # type: ignore[override]
        reason = f"{self.path.name}: axolotl is not installed in this environment (it tests plain TRL)"
        pytest.skip(reason, allow_module_level=True)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path, parent):
    if module_path.parent == Path(__file__).parent and module_path.name in NEEDS_AXOLOTL:
        return _NeedsAxolotl.from_parent(parent, path=module_path)
    return None


def pytest_report_header() -> list[str]:
    if not AXOLOTL_MISSING:
        return []
    return [f"axolotl is not installed: skipped (they import axolotl): {', '.join(NEEDS_AXOLOTL)}"]


@pytest.fixture(scope="session")
def chatml_tokenizer():
    return build_tiny_tokenizer("chatml")


@pytest.fixture(scope="session")
def llama3_tokenizer():
    return build_tiny_tokenizer("llama3")


@pytest.fixture
def chatml_model(chatml_tokenizer):
    model = build_tiny_model(chatml_tokenizer, "chatml", seed=0)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A saved tiny ChatML checkpoint, shared by the end-to-end tests."""
    from inspo_plugin.models.tiny import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model", "chatml")
