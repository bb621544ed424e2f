"""Running the real ``axolotl`` CLI in a subprocess, offline, from the test suite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
AXOLOTL_BIN = Path(sys.executable).parent / "axolotl"
OFFLINE_ENV = {
    "AXOLOTL_DO_NOT_TRACK": "1",  # telemetry would keep the process alive without network
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "disabled",
    "TOKENIZERS_PARALLELISM": "false",
}
TIMEOUT_S = 420


def run_axolotl(
    command: str, config: Path, cwd: Path, launcher: str | None = "python", extra: tuple[str, ...] = ()
) -> tuple[subprocess.CompletedProcess[str], float]:
    """``axolotl <command> config`` with the offline environment; returns the process and seconds.

    ``launcher``: ``python`` (one process), ``accelerate`` (axolotl's default: it re-executes itself
    under ``accelerate launch``), or ``None`` for commands without the option (``preprocess``).
    """
    env = {**os.environ, **OFFLINE_ENV, "HF_DATASETS_CACHE": str(cwd / "hf-datasets")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    # The default launcher re-executes `accelerate launch ...` looked up on PATH: put this
    # environment's scripts first, as an activated virtual environment would.
    env["PATH"] = os.pathsep.join(p for p in (str(AXOLOTL_BIN.parent), env.get("PATH")) if p)
    cmd = [str(AXOLOTL_BIN), command, str(config), *extra]
    if launcher not in (None, "accelerate"):
        cmd += ["--launcher", launcher]
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    return proc, time.monotonic() - start


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
