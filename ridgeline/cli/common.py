"""Helpers every command shares: the MODEL argument, ``--dim``, tables and ``--json`` output."""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..ir import Graph
from ..ir.errors import RidgelineError
from ..models import MAX_BATCH, MAX_CONTEXT  # noqa: F401 - the flags' bounds are the builder's

__all__ = ["add_model_argument", "load_model", "parse_dims", "emit", "table", "console", "fmt_bytes",
           "fmt_count", "fmt_time", "to_jsonable", "UsageError", "parse_int", "int_arg", "plain_text"]


class UsageError(RidgelineError):
    """A bad flag value (the CLI reports it like any other user error)."""


def add_model_argument(p: argparse.ArgumentParser, *, dims: bool = True) -> None:
    p.add_argument("model", metavar="MODEL", help="an .onnx file, a .rir text-IR file, or a preset name")
    if dims:
        p.add_argument("--dim", action="append", default=[], metavar="NAME=SIZE",
                       help="bind a symbolic dim (repeatable), e.g. --dim batch=1 --dim seq=128")


#: bounds of the numbers flags take: far beyond any real use, small enough that nothing built from
#: them allocates without bound (assumptions, not hardware figures)
MAX_SEED = 2 ** 63 - 1
MAX_DEGREE = 2 ** 16         # tensor/pipeline-parallel degree
#: the largest dim a user may bind (the importer refuses any tensor dim above it too)
MAX_DIM = 2 ** 40
_INT = re.compile(r"-?[0-9]{1,20}")


def parse_int(text: str, what: str, lo: int, hi: int) -> int:
    """``text`` as a whole number in ``lo..hi``, written in plain ASCII digits (no ``1_000``, no
    ``٣`` or ``２``, no 4,000-digit strings), else a ``ValueError`` saying what was expected."""
    kind = {1: "a positive integer", 0: "a non-negative integer"}.get(lo, f"an integer from {lo}")
    expected = f"{kind} (digits 0-9, at most {hi})"
    if not isinstance(text, str) or not _INT.fullmatch(text.strip()):
        raise ValueError(f"{what} must be {expected}, got {str(text)[:40]!r}")
    v = int(text.strip())
    if not lo <= v <= hi:
        raise ValueError(f"{what} must be {expected}, got {text.strip()[:40]}")
    return v


def int_arg(lo: int, hi: int) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number in ``lo..hi`` (see ``parse_int``)."""
    def parse(text: str) -> int:
        try:
            return parse_int(text, "the value", lo, hi)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
    parse.__name__ = "integer"  # argparse names the type in its message
    return parse


def float_arg(lo: float, hi: float, *, open_lo: bool = False):
    """An argparse ``type=`` for a finite number in ``lo..hi`` (``(lo, hi]`` with ``open_lo``)."""
    what = f"a finite number {'>' if open_lo else '>='} {lo:g}" + ("" if math.isinf(hi) else f" and <= {hi:g}")

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}") from None
        if not math.isfinite(v) or v < lo or (open_lo and v == lo) or v > hi:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text[:40]!r}")
        return v
    parse.__name__ = "number"
    return parse


def parse_dims(items: Sequence[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--dim expects NAME=SIZE, got {item[:80]!r}")
        try:
            out[name.strip()] = parse_int(value, f"--dim {name.strip()[:40]}", 0, MAX_DIM)
        except ValueError as e:
            raise UsageError(str(e)) from None
    return out


def parse_rates(text: str) -> list[float]:
    """``--sweep``'s comma-separated arrival rates, each finite and positive."""
    try:
        rates = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(f"--sweep expects rates such as 0.5,1,2,4, got {text!r}") from None
    if not rates or not all(math.isfinite(r) and r > 0 for r in rates):
        raise UsageError(f"--sweep rates must be positive, got {text!r}")
    return rates


#: preset flags a command may define; load_model forwards those present to the preset builder
PRESET_FLAGS = ("phase", "batch", "context", "prompt", "dtype", "weight_dtype", "kv_dtype", "weight_group", "logits",
                "act_dtype", "tp", "pp")


def is_file_model(name: str) -> bool:
    """Whether MODEL names a file (an .onnx/.rir suffix, or any existing path) rather than a preset."""
    p = Path(name)
    return p.suffix.lower() in (".onnx", ".rir") or p.exists()


def load_model(args: argparse.Namespace, *, bind: bool = True) -> Graph:
    """Load ``args.model`` (file or preset), binding ``--dim`` values."""
    from ..api import load
    dims = parse_dims(getattr(args, "dim", []) or [])
    opts = {}
    if not is_file_model(args.model):
        opts = {k: getattr(args, k) for k in PRESET_FLAGS if getattr(args, k, None) is not None}
    return load(args.model, dims=dims if (dims and bind) else None, **opts)


def to_jsonable(x: Any) -> Any:
    """Plain JSON values from numpy scalars, sympy expressions, tuples and dataclasses."""
    import dataclasses
    import numpy as np
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return to_jsonable(dataclasses.asdict(x))
    if isinstance(x, dict):
        return {str(k): to_jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [to_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    if isinstance(x, (int, float, str, bool)) or x is None:
        return x
    return str(x)


def emit(args: argparse.Namespace, data: Any, render: Callable[[], None]) -> None:
    """Print ``data`` as JSON with ``--json``, else call ``render`` to draw tables."""
    if getattr(args, "json", False):
        json.dump(to_jsonable(data), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        render()


_console = None


def console():
    global _console
    if _console is None:
        from rich.console import Console
        _console = Console(highlight=False, soft_wrap=False)
    return _console


def wide_output(min_width: int = 160) -> None:
    """Tables of estimates are wide: when stdout is not a terminal (a pipe, a file, a test), render
    them at least ``min_width`` columns wide instead of wrapping every cell at 80."""
    if not sys.stdout.isatty():
        c = console()
        if c.width < min_width:
            c.width = min_width


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]], *,
          justify: Sequence[str] | None = None, caption: str | None = None):
    from rich.table import Table
    t = Table(title=title, caption=caption, title_justify="left", header_style="bold")
    for i, c in enumerate(columns):
        t.add_column(c, justify=(justify[i] if justify else ("left" if i == 0 else "right")))
    for r in rows:
        t.add_row(*[str(x) for x in r])
    console().print(t)


def fmt_bytes(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return str(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1024
    return str(n)


def fmt_count(n: Any) -> str:
    if not isinstance(n, (int, float)):
        return str(n)
    for unit, scale in (("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def fmt_time(s: float | None) -> str:
    if s is None or not isinstance(s, (int, float)) or math.isnan(s):
        return "-"
    if s >= 1:
        return f"{s:.3f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.3f} ms"
    return f"{s * 1e6:.2f} µs"


_ROLE = re.compile(r":[a-z]+:`([^`]*)`")


def plain_text(text: str) -> str:
    """Help from docstrings, as a terminal shows it: reST roles, ``literals`` and `quotes` lose
    their markup and a paragraph's closing ``::`` becomes ``:``."""
    text = _ROLE.sub(r"\1", text).replace("``", "").replace("`", "")
    return re.sub(r"(?<=\S)::(?=\s|$)", ":", text)
