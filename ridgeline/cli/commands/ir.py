"""``ridgeline ir MODEL``: print the text IR (large constants elided) or write a ``.rir`` file."""

from __future__ import annotations

import argparse
import sys

from ...ir import print_graph
from ...ir.safe_files import check_output_path
from ..common import UsageError, add_model_argument, load_model


def register(sub) -> None:
    p = sub.add_parser("ir", help="print the text IR of a model, or write it to a .rir file")
    add_model_argument(p)
    p.add_argument("-o", "--output", metavar="FILE.rir",
                   help="write a complete, runnable .rir (large constants in FILE.rir.npz)")
    p.add_argument("--constants", choices=("elide", "inline", "sidecar"), default=None,
                   help="how constant data prints: elide on screen (default), inline base64, or a sidecar file")


def run(args: argparse.Namespace) -> int:
    g = load_model(args)
    if args.output:
        if not args.output.endswith(".rir"):
            raise UsageError(f"-o {args.output}: the output file must end in .rir")
        check_output_path(args.output, "-o")
        from ...ir.rir_file import save_rir
        save_rir(g, args.output, constants=args.constants if args.constants in ("inline", "sidecar") else "sidecar")
        sys.stderr.write(f"wrote {args.output}\n")
        return 0
    if args.constants == "sidecar":
        raise UsageError("--constants sidecar needs -o FILE.rir")
    sys.stdout.write(print_graph(g, constants=args.constants or "elide"))
    return 0
