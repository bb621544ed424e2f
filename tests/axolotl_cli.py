"""Running the real ``axolotl`` CLI in a subprocess, offline, from the test suite."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import yaml

from inspo_plugin.axolotl.launch import AXOLOTL_BIN, Launcher
from inspo_plugin.axolotl.launch import run_axolotl as _run_axolotl
from inspo_plugin.offline import OFFLINE_ENV

__all__ = [
    "AXOLOTL_BIN",
    "OFFLINE_ENV",
    "ROOT",
    "TIMEOUT_S",
    "log_history",
    "logged",
    "output_of",
    "run_axolotl",
    "write_config",
]

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 420


def run_axolotl(
    command: str,
    config: Path,
    cwd: Path,
    launcher: Launcher | None = "python",
    extra: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``axolotl <command> config`` with the offline environment; returns the process and seconds.

    ``launcher``: ``python`` (one process), ``accelerate`` (axolotl's default: it re-executes itself
    under ``accelerate launch``), or ``None`` for commands without the option (``preprocess``).
    Delegates to :func:`inspo_plugin.axolotl.launch.run_axolotl`, adding a data sets cache under
    ``cwd``, the repository first on ``PYTHONPATH``, the variables of ``env`` and a timeout of ``TIMEOUT_S``.
    """
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    result = _run_axolotl(
        command,
        config,
        launcher=launcher,
        extra_args=extra,
        cwd=cwd,
        extra_env={"HF_DATASETS_CACHE": str(cwd / "hf-datasets"), "PYTHONPATH": pythonpath, **(env or {})},
        timeout=TIMEOUT_S,
    )
    return result.to_completed_process(), result.seconds


def output_of(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout[-6000:] + "\n--- stderr ---\n" + proc.stderr[-8000:]


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def log_history(output_dir: Path) -> list[dict[str, Any]]:
    """The trainer's logged history from the last checkpoint's trainer_state.json."""
    checkpoints = sorted(output_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if not checkpoints:
        raise AssertionError(f"no checkpoint in {output_dir}: {sorted(p.name for p in output_dir.iterdir())}")
    return json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]


def logged(history: list[dict[str, Any]], key: str) -> list[float]:
    return [entry[key] for entry in history if key in entry]
