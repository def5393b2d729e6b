"""Row kernels: Softmax, LogSoftmax, LayerNormalization, RMSNormalization and Reduce*.

A normalization or softmax reads its row from memory once: one sweep gathers the statistics
(max; shifted sum and sum of squares; sum of squares), a second sweep — over a row that is now in
cache — writes the result. No intermediate tensor is ever written. Sums use fast-math
reassociation so that LLVM keeps one partial sum per SIMD lane; maxima use ``llvm.maximum``,
which vectorizes and propagates NaN as numpy does.

Reduce* ops reduce one contiguous run of axes: the input is seen as [outer, R, inner] and the
kernel accumulates R rows of ``inner`` elements into the output (vectorized along ``inner``), or
one row of R elements per output when ``inner`` is 1.
"""

from __future__ import annotations

import math
from typing import Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir import Node
from . import mathlib as M
from .irutil import F32, F64, I64, REDUCE_FLAGS, Var, call_intrinsic, const, kernel_function, load, loop, store
from .lowering import Lowering, Unsupported, launcher

__all__ = ["SoftmaxLowering", "NormLowering", "ReduceLowering"]

_FLOAT = {"f32": F32, "f64": F64}


def _float_type(node: Node, *values) -> ir.Type:
    names = {v.type.dtype.name for v in values if v is not None}
    if len(names) != 1 or next(iter(names)) not in _FLOAT:
        raise Unsupported(f"{node.op} on {', '.join(sorted(names))} (kernels take f32 or f64)")
    return _FLOAT[next(iter(names))]


def _rows(shape: Sequence[int], axis: int) -> tuple[int, int]:
    return math.prod(shape[:axis]), math.prod(shape[axis:])


def _fadd(b, x, y):
    return b.fadd(x, y, flags=REDUCE_FLAGS)


class _RowLowering(Lowering):
    """A kernel over ``rows`` rows of ``n`` contiguous elements: inputs ``args_idx`` of shapes
    ``expect``, then the constant ``aux`` arrays, then the outputs."""

    ty: ir.Type
    rows: int
    n: int

    def _start(self, node: Node, in_shapes, *values) -> tuple[int, ...]:
        """The input's shape and the kernel's float type; by default one input, one output."""
        self.node = node
        if in_shapes[0] is None:
            raise Unsupported("unknown shape")
        self.ty = _float_type(node, *values)
        self.shape = tuple(in_shapes[0])
        self.args_idx, self.expect, self.aux = [0], [(0, self.shape)], []
        self.out_shapes = [tuple(v.type.shape) for v in node.outputs]
        self.out_dtypes = [v.type.dtype.np_dtype for v in node.outputs]
        return self.shape

    def bind(self, fn, runner):
        return launcher(self, fn("main"), runner, self.rows, self.args_idx + self.aux, self.expect, self.cost)


class SoftmaxLowering(_RowLowering):
    """Softmax / LogSoftmax along the last axis (or an axis followed only by 1-sized dims)."""

    def __init__(self, node: Node, in_shapes):
        shape = self._start(node, in_shapes, node.inputs[0], node.outputs[0])
        axis = node.attr("axis") % max(len(shape), 1)
        if any(d != 1 for d in shape[axis + 1:]):
            raise Unsupported(f"{node.op} along a non-trailing axis")
        self.rows, self.n = _rows(shape, axis)
        self.log = node.op == "LogSoftmax"
        self.cost = 8.0 * self.rows * self.n * (4 if self.ty == F32 else 8)

    def emit(self, module, name):
        ty, n = self.ty, self.n
        fn, b, lo, hi, (x, y) = kernel_function(module, name("main"), 2)
        with loop(b, lo, hi, name="r") as r:
            base = b.mul(r, const(I64, n))
            m = Var(b, ty, const(ty, float("-inf")))
            with loop(b, 0, n, name="j") as j:
                m.set(call_intrinsic(b, "maximum", m.get(), load(b, x, b.add(base, j), ty)))
            mx = m.get()   # an all -inf row gives NaN, as ONNX's definition does
            s = Var(b, ty, const(ty, 0.0))
            with loop(b, 0, n, name="k") as k:
                e = M.exp(b, b.fsub(load(b, x, b.add(base, k), ty), mx))
                if not self.log:
                    store(b, e, y, b.add(base, k))
                s.set(_fadd(b, s.get(), e))
            tot = s.get()
            if self.log:
                shift = b.fadd(mx, M.log(b, tot))
                with loop(b, 0, n, name="w") as w:
                    store(b, b.fsub(load(b, x, b.add(base, w), ty), shift), y, b.add(base, w))
            else:
                inv = b.fdiv(const(ty, 1.0), tot)
                with loop(b, 0, n, name="w") as w:
                    idx = b.add(base, w)
                    store(b, b.fmul(load(b, y, idx, ty), inv), y, idx)
        b.ret_void()


class NormLowering(_RowLowering):
    """LayerNormalization (with its optional Mean / InvStdDev outputs) and RMSNormalization."""

    def __init__(self, node: Node, in_shapes, known):
        shape = self._start(node, in_shapes, *node.inputs, *node.outputs)
        axis = node.attr("axis") % len(shape)
        self.rows, self.n = _rows(shape, axis)
        self.eps = float(node.attr("epsilon"))
        self.rms = node.op == "RMSNormalization"
        trailing = tuple(shape[axis:])
        # scale and bias: read per element of the row; anything smaller is broadcast once here
        self.has_bias = not self.rms and len(node.inputs) > 2 and node.inputs[2] is not None
        for i in (1, 2) if self.has_bias else (1,):
            s = in_shapes[i]
            if s is not None and math.prod(s) == self.n:
                self.args_idx.append(i)
                self.expect.append((i, tuple(s)))
            elif i in known:
                self.aux.append(np.ascontiguousarray(np.broadcast_to(known[i], trailing)).reshape(-1))
            else:
                raise Unsupported(f"{node.op} with a broadcast, non-constant input {i}")
        self.n_stats = len(node.outputs) - 1
        if self.n_stats and any(v.type.dtype.name != "f32" for v in node.outputs[1:]):
            raise Unsupported("LayerNormalization statistics in a dtype other than f32")
        self.cost = 10.0 * self.rows * self.n * (4 if self.ty == F32 else 8)

    def emit(self, module, name):
        ty, n = self.ty, self.n
        n_in = 2 + int(self.has_bias)
        fn, b, lo, hi, ptrs = kernel_function(module, name("main"), n_in + 1 + self.n_stats)
        x, scale = ptrs[0], ptrs[1]
        bias = ptrs[2] if self.has_bias else None
        y = ptrs[n_in]
        stats = ptrs[n_in + 1:]
        nf = const(ty, float(n))
        with loop(b, lo, hi, name="r") as r:
            base = b.mul(r, const(I64, n))
            if self.rms:
                ss = Var(b, ty, const(ty, 0.0))
                with loop(b, 0, n, name="j") as j:
                    v = load(b, x, b.add(base, j), ty)
                    ss.set(_fadd(b, ss.get(), b.fmul(v, v)))
                mean = None
                inv = b.fdiv(const(ty, 1.0), call_intrinsic(b, "sqrt", b.fadd(b.fdiv(ss.get(), nf), const(ty, self.eps))))
            else:
                # shifted sums: subtracting the row's first element keeps E[x²] - E[x]² accurate
                shift = load(b, x, base, ty) if n else const(ty, 0.0)
                s1, s2 = Var(b, ty, const(ty, 0.0)), Var(b, ty, const(ty, 0.0))
                with loop(b, 0, n, name="j") as j:
                    d = b.fsub(load(b, x, b.add(base, j), ty), shift)
                    s1.set(_fadd(b, s1.get(), d))
                    s2.set(_fadd(b, s2.get(), b.fmul(d, d)))
                m1 = b.fdiv(s1.get(), nf)
                var = b.fsub(b.fdiv(s2.get(), nf), b.fmul(m1, m1))
                var = b.select(b.fcmp_ordered("<", var, const(ty, 0.0)), const(ty, 0.0), var)
                mean = b.fadd(shift, m1)
                inv = b.fdiv(const(ty, 1.0), call_intrinsic(b, "sqrt", b.fadd(var, const(ty, self.eps))))
            with loop(b, 0, n, name="w") as w:
                idx = b.add(base, w)
                v = load(b, x, idx, ty)
                if mean is not None:
                    v = b.fsub(v, mean)
                out = b.fmul(b.fmul(v, inv), load(b, scale, w, ty))
                if bias is not None:
                    out = b.fadd(out, load(b, bias, w, ty))
                store(b, out, y, idx)
            for stat, v in zip(stats, (mean, inv)):   # LayerNormalization's Mean and InvStdDev, in f32
                store(b, b.fptrunc(v, F32) if ty == F64 else v, stat, r)
        b.ret_void()


# ----------------------------------------------------------------------------------- Reduce*
_INIT = {"ReduceSum": 0.0, "ReduceMean": 0.0, "ReduceSumSquare": 0.0, "ReduceL1": 0.0, "ReduceL2": 0.0,
         "ReduceLogSum": 0.0, "ReduceLogSumExp": 0.0, "ReduceProd": 1.0, "ReduceMax": float("-inf"),
         "ReduceMin": float("inf")}


class ReduceLowering(_RowLowering):
    """Reduce* over one contiguous run of axes, in f32 or f64: ``rows`` is the outer extent."""

    def __init__(self, node: Node, in_shapes, known):
        shape = self._start(node, in_shapes, node.inputs[0], node.outputs[0])
        has_axes = len(node.inputs) > 1 and node.inputs[1] is not None
        if has_axes and 1 not in known:
            raise Unsupported("axes not constant")
        axes = [int(a) % max(len(shape), 1) for a in known[1].reshape(-1)] if has_axes else []
        if not axes:
            if node.attr("noop_with_empty_axes"):
                raise Unsupported("a no-op reduction")  # an identity: leave it to the reference
            axes = list(range(len(shape)))
        red = sorted(set(axes))
        live = [a for a in red if shape[a] != 1]
        if live and live != list(range(live[0], live[-1] + 1)):
            # reduced axes separated by kept dims of size 1 still form one run
            between = [d for d in range(live[0], live[-1] + 1) if d not in red]
            if any(shape[d] != 1 for d in between):
                raise Unsupported("reduced axes are not one contiguous run")
        first, last = (live[0], live[-1]) if live else (0, -1)
        self.rows = math.prod(shape[:first]) if live else math.prod(shape)
        self.r = math.prod(shape[first:last + 1]) if live else 1
        self.inner = math.prod(shape[last + 1:]) if live else 1
        self.cost = 2.0 * math.prod(shape) * (4 if self.ty == F32 else 8)

    def _accumulate(self, b, acc, v):
        op = self.node.op
        if op in ("ReduceMax", "ReduceMin"):
            return call_intrinsic(b, "maximum" if op == "ReduceMax" else "minimum", acc, v)
        if op == "ReduceProd":
            return b.fmul(acc, v, flags=REDUCE_FLAGS)
        if op in ("ReduceSumSquare", "ReduceL2"):
            v = b.fmul(v, v)
        elif op == "ReduceL1":
            v = call_intrinsic(b, "fabs", v)
        elif op == "ReduceLogSumExp":
            v = M.exp(b, v)
        return _fadd(b, acc, v)

    def _finish(self, b, acc):
        op, ty = self.node.op, self.ty
        if op == "ReduceMean":
            return b.fdiv(acc, const(ty, float(self.r)))
        if op == "ReduceL2":
            return call_intrinsic(b, "sqrt", acc)
        if op in ("ReduceLogSum", "ReduceLogSumExp"):
            return M.log(b, acc)
        return acc

    def emit(self, module, name):
        ty, r, inner = self.ty, self.r, self.inner
        init = const(ty, _INIT[self.node.op])
        fn, b, lo, hi, (x, y) = kernel_function(module, name("main"), 2)
        with loop(b, lo, hi, name="o") as o:
            if inner == 1:
                acc = Var(b, ty, init)
                base = b.mul(o, const(I64, r))
                with loop(b, 0, r, name="j") as j:
                    acc.set(self._accumulate(b, acc.get(), load(b, x, b.add(base, j), ty)))
                store(b, self._finish(b, acc.get()), y, o)
            else:
                obase = b.mul(o, const(I64, inner))
                with loop(b, 0, inner, name="i0") as i:
                    store(b, init, y, b.add(obase, i))
                with loop(b, 0, r, name="j") as j:
                    xbase = b.mul(b.add(b.mul(o, const(I64, r)), j), const(I64, inner))
                    with loop(b, 0, inner, name="i") as i:
                        idx = b.add(obase, i)
                        store(b, self._accumulate(b, load(b, y, idx, ty), load(b, x, b.add(xbase, i), ty)), y, idx)
                with loop(b, 0, inner, name="i2") as i:
                    idx = b.add(obase, i)
                    store(b, self._finish(b, load(b, y, idx, ty)), y, idx)
        b.ret_void()
