"""The environment for running Axolotl, transformers and datasets without a network.

Everything in this project runs offline (the demo, the benchmark, the scripts, the test suite, the
Axolotl CLI in a subprocess); these are the variables that make that work, in one place.

- :data:`OFFLINE_ENV`: the variables and their values.
- :func:`offline_env`: a copy of an environment with them added, for a subprocess.
- :func:`apply_offline_defaults`: add them to this process's ``os.environ``; call it before
  ``huggingface_hub``, ``datasets`` or ``transformers`` is imported (they read the variables once,
  at import time).

Both functions only fill in what is not set already: a caller that sets, say,
``HF_HUB_OFFLINE=0`` keeps it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["OFFLINE_ENV", "apply_offline_defaults", "offline_env"]

OFFLINE_ENV: Mapping[str, str] = MappingProxyType(
    {
        # Axolotl's telemetry: without network its sender keeps a finished run alive (the process
        # does not exit), and nothing should leave the machine anyway.
        "AXOLOTL_DO_NOT_TRACK": "1",
        # Models and tokenizers come from local directories: no Hub look-ups (which would hang or
        # fail without network), even for files a local checkpoint lacks.
        "HF_HUB_OFFLINE": "1",
        # Data sets are local .jsonl files: `datasets` must not try to resolve them on the Hub.
        "HF_DATASETS_OFFLINE": "1",
        # Axolotl and the trainers report to Weights & Biases when it is installed; no login, no upload.
        "WANDB_MODE": "disabled",
        # The Rust tokenizers' thread pool does not survive a fork (dataset workers, DataLoader): off,
        # which also silences its warning.
        "TOKENIZERS_PARALLELISM": "false",
    }
)
"""Variable → value for an offline run; see the comments in the source for why each."""


def offline_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: ``os.environ``) with :data:`OFFLINE_ENV` added where ``base``
    does not set a variable already. ``base`` itself is not changed."""
    env = dict(os.environ if base is None else base)
    for key, value in OFFLINE_ENV.items():
        env.setdefault(key, value)
    return env


def apply_offline_defaults() -> None:
    """``os.environ.setdefault`` for each variable of :data:`OFFLINE_ENV`."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
