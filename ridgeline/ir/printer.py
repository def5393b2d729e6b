"""The text form of the IR. ``parse(print(g))`` prints the same text.

    graph @tiny(%x: f32[batch, 64], %w: f32[64, 64]) -> (%y: f32[batch, 64]) {
      const %b: f32[64] = dense<"AAAA...">
      %0 = MatMul(%x, %w) : f32[batch, 64]
      %y = Gelu(%0) {approximate = "tanh"} : f32[batch, 64]
      return %y
    }

Constants are written inline (small ones as number lists, large ones as base64 ``dense<...>``
blobs), by reference to a sidecar ``.npz`` (``= @sidecar``), weightless (no ``=``), or elided for
the screen (``= <elided ...>``, which the parser refuses rather than silently dropping data).
Node ``meta`` prints as ``meta {...}`` and a fused node's body as ``body graph @...``.
"""

from __future__ import annotations

import base64
import math
import re
from typing import Any, Literal, Mapping

import numpy as np

from .types import TensorType

__all__ = ["print_graph", "format_name", "format_value", "INLINE_LIMIT"]

#: constants with at most this many elements print as number lists
INLINE_LIMIT = 16

_BARE = re.compile(r"[A-Za-z0-9_.$-]+\Z")
_BARE_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")

ConstantMode = Literal["inline", "sidecar", "elide"]


def format_name(name: str) -> str:
    """``%x`` for plain names, ``%"a/b:0"`` for names with other characters."""
    return "%" + (name if _BARE.match(name) else _quote(name))


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t"}


def _quote(s: str) -> str:
    """A JSON-style string literal (what the parser reads back with ``json.loads``)."""
    return '"' + "".join(_ESCAPES.get(ch) or (f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch)
                         for ch in s) + '"'


def _format_float(x: float) -> str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    r = repr(float(x))
    return r if any(c in r for c in ".en") else r + ".0"


def _format_key(k: str) -> str:
    return k if _BARE_KEY.match(k) else _quote(k)


def format_value(v: Any) -> str:
    """An attribute or meta value: int, float, str, list, dict, tensor, bool or None."""
    if v is None:
        return "none"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return _format_float(float(v))
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, np.ndarray):
        return _format_tensor(v)
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{_format_key(k)} = {format_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(format_value(x) for x in v) + "]"
    raise TypeError(f"cannot print attribute value {v!r}")


def _tensor_type(arr: np.ndarray) -> TensorType:
    from .dtypes import from_numpy
    return TensorType(from_numpy(arr.dtype), tuple(int(s) for s in arr.shape))


def _format_tensor(arr: np.ndarray) -> str:
    return f"tensor<{_tensor_type(arr)} = {_format_data(arr)}>"


def _format_data(arr: np.ndarray) -> str:
    if arr.size <= INLINE_LIMIT:
        return _literal(arr)
    return f'dense<"{base64.b64encode(np.ascontiguousarray(arr).tobytes()).decode("ascii")}">'


def _literal(arr: np.ndarray) -> str:
    kind = arr.dtype.kind
    if kind == "b":
        fmt = lambda x: "true" if x else "false"  # noqa: E731
    elif kind in "iu" or arr.dtype.name in ("int4", "uint4"):  # bf16 and fp8 are kind "V" too: floats
        fmt = lambda x: str(int(x))  # noqa: E731
    else:
        fmt = lambda x: _format_float(float(x))  # noqa: E731

    def rec(a):
        if a.ndim == 0:
            return fmt(a.item() if kind in "biuf" else a)
        return "[" + ", ".join(rec(x) for x in a) + "]"
    if arr.dtype.name in ("int4", "uint4"):
        return rec(arr.astype(np.int64))
    return rec(arr)


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def print_graph(graph, *, constants: ConstantMode = "inline", inline_limit: int | None = None,
                indent: str = "") -> str:
    """The text of ``graph``. ``constants`` chooses how data prints: inline, sidecar or elide.

    In ``elide`` mode only constants above ``inline_limit`` elements (default ``INLINE_LIMIT``)
    are elided; in ``sidecar`` mode those are written as ``@sidecar`` references.
    """
    limit = INLINE_LIMIT if inline_limit is None else inline_limit
    lines: list[str] = []
    _print(graph, lines, indent, constants, limit)
    return "\n".join(lines) + ("\n" if not indent else "")


def _sig(values) -> str:
    return ", ".join(f"{format_name(v.name)}: {v.type}" for v in values)


def _print(graph, lines: list[str], ind: str, mode: ConstantMode, limit: int) -> None:
    lines.append(f"{ind}graph @{_graph_name(graph.name)}({_sig(graph.inputs)}) -> ({_sig(graph.outputs)}) {{")
    inner = ind + "  "
    if graph.meta:
        lines.append(f"{inner}meta {format_value(_printable_meta(graph.meta))}")
    for v in graph.constants.values():
        head = f"{inner}const {format_name(v.name)}: {v.type}"
        stored = v.stored
        if stored is None:
            lines.append(head)
        elif mode != "inline" and stored.size > limit:  # printed without reading a file-backed weight
            lines.append(f"{head} = @sidecar" if mode == "sidecar" else
                         f"{head} = <elided {_human_bytes(stored.nbytes)}>")
        elif stored.size <= limit:
            lines.append(f"{head} = {_literal(v.data)}")
        else:   # inline mode
            lines.append(f"{head} = {_format_data(v.data)}")
        if v.meta:
            lines[-1] += f" meta {format_value(v.meta)}"
    for n in graph:
        outs = ", ".join(format_name(v.name) for v in n.outputs)
        ins = ", ".join(format_name(v.name) if v is not None else "none" for v in n.inputs)
        text = f"{inner}{outs} = {n.op}({ins})"
        if n.attrs:
            text += " {" + ", ".join(f"{_format_key(k)} = {format_value(x)}" for k, x in n.attrs.items()) + "}"
        text += " : " + ", ".join(str(v.type) for v in n.outputs)
        if n.meta:
            text += f" meta {format_value(_printable_meta(n.meta))}"
        if n.body is not None:
            lines.append(text + " body")
            # the sidecar holds top-level constants only; a body's constants stay inline
            _print(n.body, lines, inner + "  ", "inline" if mode == "sidecar" else mode, limit)
        else:
            lines.append(text)
    lines.append(f"{inner}return {', '.join(format_name(v.name) for v in graph.outputs)}")
    lines.append(f"{ind}}}")


def _graph_name(name: str) -> str:
    return name if _BARE.match(name) else _quote(name)


def _printable_meta(meta: Mapping[str, Any]) -> dict:
    """Meta values that the text form can carry; objects with ``to_meta()`` serialize themselves."""
    out = {}
    for k, v in meta.items():
        if hasattr(v, "to_meta"):
            v = v.to_meta()
        out[k] = v
    return out
