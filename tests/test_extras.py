"""Without a framework's extra installed, the errors say which extra of inspo-plugin to install."""

from __future__ import annotations

import subprocess
import sys

MISSING = """
import importlib.abc, sys
MISSING = set(sys.argv[1].split(","))
class Missing(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in MISSING:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Missing())
"""


def _run_without(modules: str, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", MISSING + code, modules], capture_output=True, text=True, timeout=120
    )


def test_without_trl_the_errors_name_the_extra_to_install(tmp_path):
    proc = _run_without(
        "trl", "import inspo_plugin.options, inspo_plugin.core.objectives\nimport inspo_plugin.trl"
    )
    assert proc.returncode != 0
    assert 'pip install "inspo-plugin[trl]"' in proc.stderr and "ModuleNotFoundError" in proc.stderr
    cli = f"from inspo_plugin.cli import main\nsys.exit(main(['tiny-model', '--output', {str(tmp_path)!r}]))"
    proc = _run_without("trl,transformers,datasets", cli)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "needs transformers, which is not installed" in proc.stderr
    assert 'pip install "inspo-plugin[trl]"' in proc.stderr
