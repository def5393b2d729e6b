"""Weights streamed to an external-data file, one tensor at a time.

A 500 MiB model saved inline needs its weights in memory twice over (the arrays and the protobuf
holding their bytes); here each constant's bytes go straight from its array (or its memory map)
to ``<model>.onnx.data``, and the model proto only records ``location``/``offset``/``length``.
Both files are written atomically through ``ir.safe_files.write_atomic``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

import numpy as np
import onnx

from ...ir import Graph, Value
from ...ir.safe_files import check_output_path, write_atomic
from ...ir.storage import LazyTensor

__all__ = ["ALIGN", "INLINE_BELOW", "save_with_external_data", "wants_external_data"]

#: constants below this many bytes stay inline (shape tables, scalars), as onnx's own
#: ``save_as_external_data(size_threshold=1024)`` does
INLINE_BELOW = 1024
#: offsets aligned so each tensor can be memory-mapped in place (the page size of common hosts)
ALIGN = 4096
#: an inline model above this gets external data anyway (protobuf refuses messages over 2 GiB)
AUTO_EXTERNAL_BYTES = 1 << 30


def wants_external_data(graph: Graph, requested: bool | None) -> bool:
    """``requested``, or by default: when any weight came from a file or all exceed 1 GiB."""
    if requested is not None:
        return requested
    total = 0
    for c in graph.constants.values():
        if isinstance(c.stored, LazyTensor):
            return True
        if c.stored is not None:
            total += c.stored.nbytes
    return total > AUTO_EXTERNAL_BYTES


def _streamable(c: Value) -> bool:
    d = c.stored
    return (d is not None and d.nbytes >= INLINE_BELOW and c.type.dtype.bits % 8 == 0
            and sys.byteorder == "little")


def save_with_external_data(graph: Graph, path: str | os.PathLike,
                            build: Callable[[Callable[[Value], onnx.TensorProto | None]], onnx.ModelProto]
                            ) -> onnx.ModelProto:
    """Write the weights of ``graph`` to ``<path>.data`` and the model (``build(initializer)``)
    to ``path``; returns the model proto (weights by reference)."""
    out = check_output_path(path, "-o")
    location = out.name + ".data"
    placed: dict[str, tuple[int, int]] = {}

    def write(f) -> None:
        pos = 0
        for c in graph.constants.values():
            if not _streamable(c):
                continue
            pad = -pos % ALIGN
            if pad:
                f.write(b"\0" * pad)
                pos += pad
            a = np.ascontiguousarray(c.data)
            f.write(memoryview(a).cast("B"))  # the array's own bytes (a mapped weight is read once)
            placed[c.name] = (pos, a.nbytes)
            pos += a.nbytes

    write_atomic(out.parent / location, write, "-o (external data)")

    def initializer(c: Value) -> onnx.TensorProto | None:
        if c.name not in placed:
            return None
        offset, length = placed[c.name]
        t = onnx.TensorProto()
        t.name = c.name
        t.data_type = c.type.dtype.onnx_code
        t.dims.extend(int(d) for d in c.type.shape)
        t.data_location = onnx.TensorProto.EXTERNAL
        for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
            e = t.external_data.add()
            e.key, e.value = k, v
        return t

    m = build(initializer)
    write_atomic(out, m.SerializeToString())
    return m


