"""Run the ``axolotl`` command line (``train``, ``preprocess``) in a subprocess, offline.

Used by the demo, the benchmark and the end-to-end tests. Axolotl itself is never imported here:
the command runs in its own process, with

- the offline environment (:mod:`inspo_plugin.offline`), plus any variables the caller adds;
- this environment's ``bin`` directory (the one holding ``sys.executable``) first on ``PATH``, as
  an activated virtual environment would have it: Axolotl's default launcher re-executes itself as
  ``accelerate launch ...``, looking ``accelerate`` up on ``PATH``.

Output is either captured (:attr:`AxolotlRun.stdout` / :attr:`AxolotlRun.stderr`) or streamed,
stderr merged into stdout, to a log file and/or a per-line callback (:func:`progress_printer`
prints the lines that show training progress).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from inspo_plugin.offline import offline_env

__all__ = [
    "AXOLOTL_BIN",
    "BIN_DIR",
    "PROGRESS_LINES",
    "AxolotlRun",
    "Launcher",
    "axolotl_command",
    "axolotl_env",
    "progress_printer",
    "run_axolotl",
]

Launcher = Literal["python", "accelerate", "torchrun"]

BIN_DIR = Path(sys.executable).parent
"""This environment's scripts directory (``sys.executable``'s folder, symlinks not resolved)."""
AXOLOTL_BIN = BIN_DIR / "axolotl"
"""The ``axolotl`` script installed next to this interpreter."""

PROGRESS_LINES = re.compile(r"'loss'|'eval_loss'|InSPO|Training completed|Saving|Error|Traceback|Dropped")
"""Lines of an ``axolotl train`` log worth showing while it runs (see :func:`progress_printer`)."""


@dataclass(frozen=True)
class AxolotlRun:
    """A finished ``axolotl`` command."""

    command: list[str]
    returncode: int
    seconds: float
    stdout: str = ""
    """Captured standard output ("" when the output was streamed)."""
    stderr: str = ""
    """Captured standard error ("" when streamed: it is merged into the streamed output)."""
    log_path: Path | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def to_completed_process(self) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(self.command, self.returncode, self.stdout, self.stderr)


def axolotl_command(
    command: str,
    config: str | os.PathLike[str],
    *,
    launcher: Launcher | None = "python",
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The argument list: ``axolotl <command> <config> [extra_args] [--launcher <launcher>]``.

    ``launcher``: ``"python"`` runs training in this one process; ``"accelerate"`` (Axolotl's
    default, so no option is passed) re-executes under ``accelerate launch``; ``"torchrun"`` under
    ``torchrun``; ``None`` for commands that have no ``--launcher`` option (``preprocess``).
    """
    if launcher not in (None, "python", "accelerate", "torchrun"):
        raise ValueError(f"launcher must be 'python', 'accelerate', 'torchrun' or None, got {launcher!r}")
    cmd = [str(AXOLOTL_BIN), command, str(config), *extra_args]
    if launcher not in (None, "accelerate"):
        cmd += ["--launcher", launcher]
    return cmd


def axolotl_env(extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` with the offline defaults, then ``extra_env``, and :data:`BIN_DIR` first on PATH."""
    env = offline_env()
    env.update(extra_env or {})
    env["PATH"] = os.pathsep.join(p for p in (str(BIN_DIR), env.get("PATH")) if p)
    return env


def run_axolotl(
    command: str,
    config: str | os.PathLike[str],
    *,
    launcher: Launcher | None = "python",
    extra_args: Sequence[str] = (),
    cwd: str | os.PathLike[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    log_path: str | os.PathLike[str] | None = None,
    on_line: Callable[[str], None] | None = None,
) -> AxolotlRun:
    """Run ``axolotl <command> <config>`` (see :func:`axolotl_command`) and wait for it.

    Args:
        command: the Axolotl sub-command, ``"train"`` or ``"preprocess"``.
        config: the YAML config (relative paths are relative to ``cwd``).
        launcher: ``"python"``, ``"accelerate"``, ``"torchrun"`` or ``None`` (see
            :func:`axolotl_command`).
        extra_args: more command-line arguments, such as ``["--max-steps", "10"]``.
        cwd: working directory of the subprocess (default: this one's).
        extra_env: variables set on top of the offline environment (see :func:`axolotl_env`).
        timeout: seconds; past it the process is killed and :class:`subprocess.TimeoutExpired`
            raised. With ``launcher="accelerate"`` only the launcher is killed, not its workers.
        log_path: stream stdout and stderr, merged, into this file (its folder is created) instead
            of capturing them.
        on_line: stream the output and call this with every line (as read, newline included); with
            or without ``log_path``.

    Returns:
        the command, its exit status (a failure is not raised: check :attr:`AxolotlRun.ok`), the
        wall time and, unless streamed, the captured output.
    """
    cmd = axolotl_command(command, config, launcher=launcher, extra_args=extra_args)
    env = axolotl_env(extra_env)
    start = time.monotonic()
    if log_path is None and on_line is None:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
        return AxolotlRun(cmd, proc.returncode, time.monotonic() - start, proc.stdout, proc.stderr)

    log = Path(log_path) if log_path is not None else None
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
    with (
        open(os.devnull if log is None else log, "w") as sink,
        subprocess.Popen(
            cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as popen,
    ):
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            popen.kill()

        timer = threading.Timer(timeout, kill) if timeout is not None else None
        if timer is not None:
            timer.daemon = True
            timer.start()
        try:
            assert popen.stdout is not None
            for line in popen.stdout:
                sink.write(line)
                if on_line is not None:
                    on_line(line)
            code = popen.wait()
        finally:
            if timer is not None:
                timer.cancel()
    if timed_out.is_set():
        raise subprocess.TimeoutExpired(cmd, timeout or 0.0)
    return AxolotlRun(cmd, code, time.monotonic() - start, log_path=log)


def progress_printer(
    pattern: re.Pattern[str] = PROGRESS_LINES,
    *,
    indent: str = "  ",
    width: int = 220,
    heartbeat_s: float = 30.0,
) -> Callable[[str], None]:
    """An ``on_line`` callback for :func:`run_axolotl` that prints the parts of a line (split at
    carriage returns, as progress bars write them) matching ``pattern``, cut to ``width``
    characters; when nothing was printed for ``heartbeat_s`` seconds, the next line prints
    ``… training, Ns`` instead, so a long run visibly lives."""
    start = last = time.monotonic()

    def show(line: str) -> None:
        nonlocal last
        for part in line.replace("\r", "\n").splitlines():
            if pattern.search(part):
                print(indent + part.strip()[:width], flush=True)
                last = time.monotonic()
        if time.monotonic() - last > heartbeat_s:
            print(f"{indent}… training, {time.monotonic() - start:.0f}s", flush=True)
            last = time.monotonic()

    return show
