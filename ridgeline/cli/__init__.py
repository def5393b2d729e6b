"""The ``ridgeline`` command.

Each sub-command lives in ``ridgeline/cli/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser (named as the module, ``-`` for ``_``), and ``run(args)``; this module discovers
them, runs the chosen one, and turns any user error into one line on stderr with exit status 2
(argparse usage errors included).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from typing import Sequence

from ..ir.errors import RidgelineError

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line instead of usage text plus a line."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def format_help(self) -> str:
        from .common import plain_text
        return plain_text(super().format_help())


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    parser = _Parser(prog="ridgeline", description="Compile transformer graphs; run them or estimate them "
                     "on hardware you do not have.")
    parser.add_argument("--version", action="version", version=f"ridgeline {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    from . import commands
    for mod in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_"):
            command = importlib.import_module(f"{commands.__name__}.{mod.name}")
            command.register(sub)
            sub.choices[mod.name.replace("_", "-")].set_defaults(func=command.run)
    return parser


def _one_line(message: str) -> str:
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    return "; ".join(lines) if lines else "unknown error"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except RidgelineError as e:
        sys.stderr.write(f"ridgeline {args.command}: error: {_one_line(e)}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("ridgeline: interrupted\n")
        return 130
    except BrokenPipeError:  # `ridgeline ir big.onnx | head`
        return 0


def entry() -> None:
    sys.exit(main())
