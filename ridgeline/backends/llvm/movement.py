"""Data movement as strided copies: Transpose, Slice, Expand, Concat, Split, Gather.

Each op is one or more copy nests ``dst[offset + i·dst_strides] = src[offset + i·src_strides]``
over an index space coalesced like an elementwise kernel's, with the byte width of the dtype as
the element (so any dtype moves, bf16 and fp8 included). A transposed read is a strided load and
the write is contiguous; a slice is an offset and strides; Expand reads with stride 0; Concat and
Split write or read sub-blocks. Gather copies rows selected at run time, after checking every
index (out-of-range indices are an error, as in the reference, never a wild read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir import Node
from ...ir.errors import BackendError
from ..kernel_math.movement import onnx_slice
from ...ir.verifier import describe as describe_node
from .irutil import I64, const, kernel_function, load, loop, store, strided_loops
from .lowering import (Lowering, Unsupported, broadcast_strides, check_inputs, coalesce, contiguous_strides, outputs,
                       ptr)
from .replay import replayable

__all__ = ["CopyLowering", "GatherLowering", "GatherNDLowering"]

_INT = {1: ir.IntType(8), 2: ir.IntType(16), 4: ir.IntType(32), 8: ir.IntType(64)}


def _element(node: Node) -> tuple[ir.IntType, int]:
    """The integer type that moves one element of ``node``'s data (any dtype of 1-8 bytes), and its size."""
    item = node.inputs[0].type.dtype.np_dtype.itemsize
    if item not in _INT:
        raise Unsupported(f"elements of {item} bytes")
    return _INT[item], item


@dataclass(frozen=True)
class _Nest:
    src: int                  # node input index
    dst: int                  # node output index
    shape: tuple[int, ...]    # coalesced index space
    src_off: int
    src_strides: tuple[int, ...]
    dst_off: int
    dst_strides: tuple[int, ...]


def _nest(src, dst, shape, src_off, src_strides, dst_off, dst_strides) -> _Nest | None:
    if math.prod(shape) == 0:
        return None
    dims, (ss, ds) = coalesce(shape, [src_strides, dst_strides])
    return _Nest(src, dst, dims, src_off, ss, dst_off, ds)


class CopyLowering(Lowering):
    """Transpose / Slice / Expand / Concat / Split as strided copies."""

    def __init__(self, node: Node, in_shapes: Sequence[tuple[int, ...] | None], known):
        self.node = node
        x = in_shapes[0]
        if x is None or any(not v.type.is_static for v in node.outputs):
            raise Unsupported("unknown shape")
        self.ty, item = _element(node)
        self.out_shapes = [tuple(v.type.shape) for v in node.outputs]
        self.out_dtypes = [v.type.dtype.np_dtype for v in node.outputs]
        self.in_shapes = [tuple(s) if s is not None else None for s in in_shapes]
        op = node.op
        nests: list[_Nest | None] = []
        if op == "Transpose":
            perm = node.attr("perm")
            perm = tuple(range(len(x)))[::-1] if perm is None else tuple(perm)
            st = contiguous_strides(x)
            out = self.out_shapes[0]
            nests.append(_nest(0, 0, out, 0, tuple(st[p] for p in perm), 0, contiguous_strides(out)))
        elif op == "Expand":
            out = self.out_shapes[0]
            nests.append(_nest(0, 0, out, 0, broadcast_strides(x, out), 0, contiguous_strides(out)))
        elif op == "Slice":
            nests.append(self._slice(x, known))
        elif op in ("Concat", "Split"):   # each part a block of the whole tensor along the axis
            axis = node.attr("axis") % len(x)
            whole = contiguous_strides(self.out_shapes[0] if op == "Concat" else x)
            parts = self.in_shapes if op == "Concat" else self.out_shapes
            if any(s is None for s in parts):
                raise Unsupported("unknown shape")
            off = 0
            for k, s in enumerate(parts):
                at, own = off * whole[axis], contiguous_strides(s)
                nests.append(_nest(k, 0, s, 0, own, at, whole) if op == "Concat" else _nest(0, k, s, at, whole, 0, own))
                off += s[axis]
        else:
            raise Unsupported(f"{op} has no llvm kernel")
        self.nests = [n for n in nests if n is not None]
        self.cost = 2.0 * sum(math.prod(s) for s in self.out_shapes) * item

    def _slice(self, x, known) -> _Nest | None:
        node = self.node
        for i in range(1, len(node.inputs)):
            if node.inputs[i] is not None and i not in known:
                raise Unsupported("Slice bounds not constant")
        starts = known[1].reshape(-1).tolist()
        ends = known[2].reshape(-1).tolist()
        axes = known[3].reshape(-1).tolist() if len(node.inputs) > 3 and node.inputs[3] is not None else list(range(len(starts)))
        steps = known[4].reshape(-1).tolist() if len(node.inputs) > 4 and node.inputs[4] is not None else [1] * len(starts)
        st = contiguous_strides(x)
        offset, strides = 0, list(st)
        probe = node.outputs[0].type.shape
        for a, s, e, k in zip(axes, starts, ends, steps):
            a = a % len(x)
            sel = range(x[a])[onnx_slice(x[a], s, e, k)]
            if len(sel) != probe[a]:
                raise Unsupported("Slice shape disagrees with inference")
            if len(sel):
                offset += sel[0] * st[a]
            strides[a] = st[a] * k
        return _nest(0, 0, self.out_shapes[0], offset, tuple(strides), 0, contiguous_strides(self.out_shapes[0]))

    def emit(self, module, name):
        ty = self.ty
        for k, n in enumerate(self.nests):
            fn, b, lo, hi, (src, dst) = kernel_function(module, name(f"c{k}"), 2)
            offsets = [const(I64, n.src_off), const(I64, n.dst_off)]
            strided_loops(b, lo, hi, n.shape, (n.src_strides, n.dst_strides), offsets,
                          lambda o: store(b, load(b, src, o[0], ty), dst, o[1]))   # noqa: B023 - called at once
            b.ret_void()

    def bind(self, fn, runner):
        calls = [(fn(f"c{k}"), n.src, n.dst, n.shape[0], self.cost / max(len(self.nests), 1)) for k, n in enumerate(self.nests)]
        out_shapes, out_dtypes = self.out_shapes, self.out_dtypes
        data_inputs = range(len(self.in_shapes)) if self.node.op == "Concat" else (0,)
        expect = [(i, self.in_shapes[i]) for i in data_inputs]
        name = describe_node(self.node)

        def run(args, outs):
            outs = outputs(outs, out_shapes, out_dtypes)
            check_inputs(name, args, expect)
            for kern, s, d, extent, cost in calls:
                runner.launch(kern, extent, [ptr(args[s]), ptr(outs[d])], cost)
            return outs
        return replayable(run)


class _IndexedCopy(Lowering):
    """What Gather and GatherND share: data and index shapes, element type, output, cost, and the
    run: every index checked against ``dims`` (the indexed dims) before ``extent`` copies."""

    dims: tuple[int, ...]
    extent: int

    def __init__(self, node: Node, in_shapes):
        self.node = node
        data, idx = in_shapes[0], in_shapes[1]
        if data is None or idx is None:
            raise Unsupported("unknown shape")
        self.ty, item = _element(node)
        self.data_shape, self.idx_shape = tuple(data), tuple(idx)
        self.out_shape = tuple(node.outputs[0].type.shape)
        self.out_dtype = node.outputs[0].type.dtype.np_dtype
        self.cost = 2.0 * math.prod(self.out_shape) * item

    def bind(self, fn, runner):
        kern, cost, extent = fn("main"), self.cost, self.extent
        out_shape, out_dtype = self.out_shape, self.out_dtype
        expect = [(0, self.data_shape), (1, self.idx_shape)]
        name = describe_node(self.node)
        dims = np.array(self.dims, dtype=np.int64)   # GatherND: one per index-tuple entry

        def run(args, outs):
            (out,) = outputs(outs, [out_shape], [out_dtype])
            check_inputs(name, args, expect)
            idx = args[1]
            if idx.size and bool(np.any((idx < -dims) | (idx >= dims))):
                raise BackendError(f"{name}: index out of range for dims {dims.tolist()} "
                                   f"(indices span {int(idx.min())}..{int(idx.max())})")
            if out.size:
                runner.launch(kern, extent, [ptr(args[0]), ptr(idx), ptr(out)], cost)
            return (out,)
        return run   # not replayable: the indices are data, checked on every run

    def emit(self, module, name):
        fn, b, lo, hi, (data, idx, out) = kernel_function(module, name("main"), 3)
        with loop(b, lo, hi, name="r") as r:   # one contiguous run of ``inner`` elements per step
            src, dst = self._source(b, r, idx), b.mul(r, const(I64, self.inner))
            with loop(b, 0, self.inner, name="c") as c:
                store(b, load(b, data, b.add(src, c), self.ty), out, b.add(dst, c))
        b.ret_void()


def _wrap(b: ir.IRBuilder, index: ir.Value, dim: int) -> ir.Value:
    """A checked index in [-dim, dim) as its position in [0, dim), as numpy reads a negative one."""
    return b.select(b.icmp_signed("<", index, const(I64, 0)), b.add(index, const(I64, dim)), index)


class GatherLowering(_IndexedCopy):
    """Gather: ``out[o, i, r] = data[o, idx[i], r]`` with every index checked before the copy."""

    def __init__(self, node: Node, in_shapes, known):
        super().__init__(node, in_shapes)
        data, idx = self.data_shape, self.idx_shape
        if node.inputs[1].type.dtype.name not in ("i64", "i32"):
            raise Unsupported("indices of another dtype than i64/i32")
        self.ity = _INT[node.inputs[1].type.dtype.np_dtype.itemsize]
        self.axis = node.attr("axis") % len(data)
        self.outer = math.prod(data[:self.axis])
        self.dim = data[self.axis]
        self.dims = (self.dim,)
        self.inner = math.prod(data[self.axis + 1:])
        self.nidx = math.prod(idx)
        self.extent = self.outer * self.nidx

    def _source(self, b, o, idx):
        """Step ``o`` is (outer, index) flattened: the row ``data[outer, idx[index]]``."""
        raw = load(b, idx, b.srem(o, const(I64, self.nidx)), self.ity)
        k = _wrap(b, b.sext(raw, I64) if self.ity.width < 64 else raw, self.dim)
        return b.mul(b.add(b.mul(b.sdiv(o, const(I64, self.nidx)), const(I64, self.dim)), k), const(I64, self.inner))


class GatherNDLowering(_IndexedCopy):
    """GatherND: each index tuple selects a contiguous slice, copied; indices checked first."""

    def __init__(self, node: Node, in_shapes, known):
        super().__init__(node, in_shapes)
        data, idx = self.data_shape, self.idx_shape
        b = node.attr("batch_dims")
        k = idx[-1]
        self.b, self.k = b, k
        self.nb = math.prod(data[:b])
        self.per = math.prod(idx[b:-1]) if len(idx) > b + 1 else 1   # index tuples per batch entry
        self.inner = math.prod(data[b + k:])
        self.dims = tuple(data[b:b + k])
        st = contiguous_strides(data[b:]) if len(data) > b else ()
        self.strides = tuple(st[:k])
        self.batch_stride = math.prod(data[b:])
        self.extent = self.nb * self.per

    def _source(self, b, r, idx):
        """Step ``r`` is (batch entry, index tuple) flattened: the slice that tuple selects."""
        src = b.mul(b.sdiv(r, const(I64, self.per)), const(I64, self.batch_stride))
        for j in range(self.k):
            raw = load(b, idx, b.add(b.mul(r, const(I64, self.k)), const(I64, j)), I64)
            src = b.add(src, b.mul(_wrap(b, raw, self.dims[j]), const(I64, self.strides[j])))
        return src
