"""Command line: ``python -m inspo_plugin {preview,eval,demo,tiny-model}`` (also installed as ``inspo``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inspo_plugin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    from inspo_plugin import cli_demo, cli_eval, cli_preview

    cli_preview.add_parser(sub)
    cli_eval.add_parser(sub)
    cli_demo.add_parser(sub)

    tiny = sub.add_parser("tiny-model", help="build a tiny random chat model for smoke tests (no download)")
    tiny.add_argument("--output", required=True, help="directory to write the checkpoint to")
    tiny.add_argument("--family", default="chatml", help="chatml (default), llama3, mistral or gemma2")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(func=_tiny_model)

    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _tiny_model(args: argparse.Namespace) -> int:
    from inspo_plugin.tiny import save_tiny_checkpoint

    path = save_tiny_checkpoint(args.output, args.family, seed=args.seed)
    print(f"tiny {args.family} model written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
