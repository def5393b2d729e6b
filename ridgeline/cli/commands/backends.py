"""``ridgeline backends``: every executing and estimating backend, and whether it is installed."""

from __future__ import annotations

import argparse

from ...backends.registry import list_backends
from ..common import emit, table


def register(sub) -> None:
    p = sub.add_parser("backends", help="list backends (executors, plugins, and one per target)")
    p.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    infos = list_backends()
    data = [{"name": b.name, "kind": b.kind, "origin": b.origin, "available": b.available,
             "description": b.description, **({"install": f"pip install 'ridgeline[{b.extra}]'"} if b.extra and not b.available else {})}
            for b in infos]

    def render() -> None:
        table("backends", ["name", "kind", "origin", "available", "description"],
              [(b.name, b.kind, b.origin, "yes" if b.available else f"no: pip install 'ridgeline[{b.extra}]'",
                b.description) for b in infos], justify=["left"] * 5)
    emit(args, data, render)
    return 0
