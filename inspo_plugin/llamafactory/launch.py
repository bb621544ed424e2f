"""``inspo-llamafactory train config.yaml [key=value ...]``: LLaMA-Factory's DPO with the InSPO objective.

The config is a LLaMA-Factory DPO YAML plus an ``inspo:`` block (:mod:`.config`); ``key=value``
arguments override it as with ``llamafactory-cli train``. The launcher checks the config, installs
InSPO into LLaMA-Factory (:mod:`.patch`) and calls LLaMA-Factory's ``run_exp``.

Distributed runs follow ``llamafactory-cli``: with ``FORCE_TORCHRUN=1``, or with more than one GPU,
it starts ``torchrun`` with LLaMA-Factory's variables (``NNODES``, ``NODE_RANK``, ``NPROC_PER_NODE``,
``MASTER_ADDR``, ``MASTER_PORT``), and each worker runs this launcher again (``_worker``), so every
training process has InSPO installed — a patch made only in the parent would be lost. A worker of
several processes that finished training exits without the interpreter's finalization
(:func:`exit_without_finalizing` says why).
Started by a launcher itself (``torchrun`` or ``accelerate launch``, which set ``LOCAL_RANK`` and
``WORLD_SIZE``), it trains in that process. DeepSpeed and FSDP come from the config, as in LLaMA-Factory
(``deepspeed: ds.json``; ``fsdp: full_shard auto_wrap`` with ``fsdp_config: fsdp.json``), or from an
accelerate config given to ``accelerate launch``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from inspo_plugin.llamafactory.config import ConfigError, split_config

USAGE = "usage: inspo-llamafactory train CONFIG.yaml [key=value ...]"
WORKER = "_worker"


def read_config(path: str, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The YAML (or JSON) file with ``key=value`` overrides, read as LLaMA-Factory reads it (OmegaConf)."""
    from omegaconf import OmegaConf

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        merged = OmegaConf.merge(OmegaConf.load(file.absolute()), OmegaConf.from_cli(list(overrides)))
        config = OmegaConf.to_container(merged)
    except Exception as err:  # YAML and OmegaConf errors: report them as a config problem
        raise ConfigError(f"{path}: cannot read it: {err}") from None
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of LLaMA-Factory arguments")
    return {str(k): v for k, v in config.items()}


def train(path: str, overrides: Sequence[str] = ()) -> None:
    """Train in this process: check the config, install InSPO, run LLaMA-Factory."""
    args, options = split_config(read_config(path, overrides), where=path)
    _log_to_stderr()
    from llamafactory.train.tuner import run_exp

    from inspo_plugin.llamafactory.patch import install

    install(options)
    # A fixed name: under torchrun this module runs as __main__.
    logging.getLogger("inspo_plugin.llamafactory.launch").info("InSPO options: %s", options.to_dict())
    run_exp(args)


def _env_enabled(name: str) -> bool:
    """LLaMA-Factory's reading of a switch variable (``extras.misc.is_env_enabled``)."""
    return os.getenv(name, "0").lower() in ("true", "y", "1")


def _device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


# Devices on which accelerate turns FSDP on (its AcceleratorState); on a CPU it trains unsharded copies.
FSDP_DEVICES = frozenset({"cuda", "xpu", "npu", "hpu", "mlu", "musa", "sdaa", "neuron"})


def check_fsdp_device(args: dict[str, Any]) -> None:
    """Refuse ``fsdp:`` where accelerate would ignore it (no GPU-like device): never a silent fallback."""
    if not args.get("fsdp"):
        return
    import torch

    device = torch.accelerator.current_accelerator() if torch.accelerator.is_available() else None
    if device is None or device.type not in FSDP_DEVICES:
        raise ConfigError(
            f"fsdp: {args['fsdp']} needs GPUs: accelerate enables FSDP only on GPU-like devices and on "
            f"{device.type if device else 'a CPU'} would train an unsharded copy in every process. Remove "
            "the fsdp keys to train without sharding, or use DeepSpeed (deepspeed: ds.json), which also "
            "runs on CPU."
        )


def _inside_launcher() -> bool:
    """Whether this process is already one worker of ``torchrun`` or ``accelerate launch``."""
    return "LOCAL_RANK" in os.environ and "WORLD_SIZE" in os.environ


def _distributed() -> bool:
    """Whether ``llamafactory-cli train`` would start torchrun (its ``launcher.launch``).

    Never inside a worker that a launcher started (``accelerate launch --config_file fsdp.yaml -m
    inspo_plugin.llamafactory.launch train ...``, LLaMA-Factory's way to pick FSDP from an accelerate
    config): that process trains itself instead of starting a second set of workers.
    """
    if _inside_launcher():
        return False
    return _env_enabled("FORCE_TORCHRUN") or _device_count() > 1


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


def launch_torchrun(path: str, overrides: Sequence[str]) -> int:
    """Run the workers under torchrun, as ``llamafactory-cli train`` does, each one this launcher.

    The parent does not import LLaMA-Factory; each worker does, and installs InSPO before training.
    """
    nproc = os.getenv("NPROC_PER_NODE") or str(_device_count())
    if int(nproc) < 1:
        raise ConfigError("FORCE_TORCHRUN=1 without GPUs: set NPROC_PER_NODE to the number of processes")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        os.getenv("NNODES", "1"),
        "--node_rank",
        os.getenv("NODE_RANK", "0"),
        "--nproc_per_node",
        nproc,
        "--master_addr",
        os.getenv("MASTER_ADDR", "127.0.0.1"),
        "--master_port",
        os.getenv("MASTER_PORT") or str(_free_port()),
        "-m",
        "inspo_plugin.llamafactory.launch",
        WORKER,
        path,
        *overrides,
    ]
    return subprocess.run(command, check=False).returncode


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``inspo-llamafactory``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(USAGE + "\n\n" + (__doc__ or ""))
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command not in ("train", WORKER) or not rest:
        print(USAGE, file=sys.stderr)
        return 2
    path, overrides = rest[0], rest[1:]
    try:
        # Check the config in the parent too, so a bad one fails once, before any worker starts.
        args, _ = split_config(read_config(path, overrides), where=path)
        check_fsdp_device(args)
        if command == "train" and _distributed():
            return launch_torchrun(path, overrides)
        train(path, overrides)
    except ConfigError as err:
        print(f"inspo-llamafactory: error: {err}", file=sys.stderr)
        return 2
    if _world_size() > 1:
        exit_without_finalizing(0)
    return 0


def _world_size() -> int:
    return int(os.getenv("WORLD_SIZE", "1"))


def exit_without_finalizing(code: int) -> NoReturn:
    """End a finished training process without Python's interpreter finalization.

    Why: a process group's worker thread can hold the last reference to a finished collective's
    tensors (gloo, the CPU backend, frees its all-gather work after completing it). Freeing them
    takes the GIL; if the main thread has meanwhile started finalizing the interpreter, the thread
    is unwound inside a C++ destructor and the process aborts (``terminate called without an active
    exception``, SIGABRT) after the model was trained and saved, and torchrun reports the run as
    failed. Seen in about one in eight two-process ZeRO-3 runs on a CPU, in the process that reaches
    the end first. The atexit handlers still run (logging's flush among them), then the standard
    streams are flushed, then the process exits with ``code``.
    """
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken: nothing left to flush
            stream.flush()
    os._exit(code)


def _log_to_stderr() -> None:
    """InSPO's own messages (options, dropped rows) on stderr, next to LLaMA-Factory's."""
    logger = logging.getLogger("inspo_plugin")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("[InSPO|%(levelname)s] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


if __name__ == "__main__":
    sys.exit(main())
