"""``python -m inspo_plugin tiny-model``: a tiny random chat model for smoke tests (no download)."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    from inspo_plugin.models.tiny import FAMILIES

    p = sub.add_parser("tiny-model", help="build a tiny random chat model for smoke tests (no download)")
    p.add_argument("--output", required=True, help="directory to write the checkpoint to")
    p.add_argument("--family", default="chatml", choices=sorted(FAMILIES), help="architecture family")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from inspo_plugin.models.tiny import save_tiny_checkpoint

    path = save_tiny_checkpoint(args.output, args.family, seed=args.seed)
    print(f"tiny {args.family} model written to {path}")
    return 0
