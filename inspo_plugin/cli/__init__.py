"""Command line: ``python -m inspo_plugin {preview,eval,demo,tiny-model}`` (also installed as ``inspo``).

Each sub-command lives in its own module with ``add_parser(sub)`` and ``run(args)``; the work itself
is done by library modules (``core``, ``evaluation``, ``models``, ``axolotl``), which never import
from here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    from inspo_plugin.cli import demo, evaluate, preview, tiny_model

    parser = argparse.ArgumentParser(prog="python -m inspo_plugin", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for command in (preview, evaluate, demo, tiny_model):
        command.add_parser(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as err:
        extra = EXTRA_OF_MODULE.get((err.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"error: `{args.command}` needs {err.name}, which is not installed: "
            f'pip install "inspo-plugin[{extra}]"',
            file=sys.stderr,
        )
        return 2


EXTRA_OF_MODULE = {
    "trl": "trl",
    "transformers": "trl",
    "datasets": "trl",
    "tokenizers": "trl",
    "accelerate": "trl",
    "axolotl": "axolotl",
    "gguf": "demo",
}
"""A missing top-level module → the extra of ``inspo-plugin`` that installs it."""
