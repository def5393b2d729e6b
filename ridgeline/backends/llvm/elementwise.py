"""Fused elementwise kernels: one loop nest over the broadcast output, the whole body per element.

A ``Fused`` node of kind "elementwise" (or a single elementwise node, lowered as a one-op body)
becomes one function: a loop over the output's coalesced index space that loads every operand
through its own strides (0 along broadcast dims), computes the body in registers and stores the
results. Intermediates never touch memory — the point of fusion. Loops are written per element
with constant trip counts and strides; LLVM's loop vectorizer widens them to the host's SIMD
width and handles remainders, so odd sizes need no special code.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir import Node
from ...ir.dtypes import dtype
from .irutil import I64, STORAGE, const, kernel_function, load, store, strided_loops
from .lowering import Lowering, Unsupported, broadcast_strides, coalesce, contiguous_strides, launcher
from .scalar_ops import COMPUTE, SUPPORTED_OPS, Scalar, constant, emit, load_scalar, store_value

__all__ = ["ElementwiseLowering", "is_elementwise"]

#: parallel chunks of a 1-D loop start on multiples of this many elements (whole cache lines)
_GRAIN = 64


def is_elementwise(node: Node) -> bool:
    if node.op == "Fused":
        return node.attr("kind") == "elementwise" and node.body is not None
    return node.op in SUPPORTED_OPS


class ElementwiseLowering(Lowering):
    """A fused elementwise body (or one elementwise op) at fixed shapes."""

    def __init__(self, node: Node, in_shapes: Sequence[tuple[int, ...] | None], known: dict[int, np.ndarray]):
        """``in_shapes[i]``: static shape of input i; ``known[i]``: its value when constant."""
        self.node = node
        out_shapes = [tuple(v.type.shape) for v in node.outputs]
        shape = out_shapes[0]
        if any(s != shape for s in out_shapes):
            raise Unsupported("outputs of different shapes")
        self.shape = shape
        self.out_shapes = out_shapes
        self.out_dtypes = [v.type.dtype.np_dtype for v in node.outputs]
        for v in node.outputs:
            if v.type.dtype.name not in COMPUTE:
                raise Unsupported(f"dtype {v.type.dtype.name}")
        # operands: ("arg", node input index) or ("aux", constant array of the body)
        self.operands: list[tuple[str, object]] = []
        self.op_shapes: list[tuple[int, ...]] = []
        self.op_dtypes: list[str] = []
        self.scalars: dict[int, Scalar] = {}      # node input index -> inlined constant
        self._plan_body(node, in_shapes, known)
        strides = [broadcast_strides(s, shape) for s in self.op_shapes]
        strides += [contiguous_strides(shape)] * len(node.outputs)
        self.dims, self.strides = coalesce(shape, strides)
        self.total = math.prod(shape)
        itemsize = sum(np.dtype(d).itemsize for d in self.out_dtypes)
        self.cost = float(self.total * (itemsize + 4 * len(self.op_shapes)) + self.total * self._n_ops)

    # ------------------------------------------------------------------ which values are operands
    def _plan_body(self, node: Node, in_shapes, known) -> None:
        if node.op == "Fused":
            body = node.body
            if len(body.inputs) != len(node.inputs):
                raise Unsupported("Fused body inputs do not match the node's inputs")
            ops = list(body)
            for n in ops:
                if n.op not in SUPPORTED_OPS or n.body is not None:
                    raise Unsupported(f"{n.op} in an elementwise body")
            self._n_ops = len(ops)
            for c in body.constants.values():
                if c.data is None:
                    raise Unsupported("a body constant without data")
                if c.data.size != 1:
                    self._add_operand(("aux", np.ascontiguousarray(c.data)), tuple(c.data.shape), c.type.dtype.name)
        else:
            if node.op not in SUPPORTED_OPS:
                raise Unsupported(f"{node.op} has no llvm elementwise kernel")
            self._n_ops = 1
        for i, v in enumerate(node.inputs):
            if v is None:
                continue
            dt = v.type.dtype.name
            if dt not in COMPUTE:
                raise Unsupported(f"dtype {dt}")
            if i in known and known[i].size == 1:
                self.scalars[i] = constant(dt, known[i].reshape(()).item())
                continue
            if in_shapes[i] is None:
                raise Unsupported("an input of unknown shape")
            self._add_operand(("arg", i), tuple(in_shapes[i]), dt)
        self.known_scalars = {i: float(known[i].reshape(())) for i in self.scalars
                              if node.inputs[i].type.dtype.name in ("f32", "f64")}

    def _add_operand(self, src, shape, dt) -> None:
        self.operands.append(src)
        self.op_shapes.append(shape)
        self.op_dtypes.append(dt)

    # ------------------------------------------------------------------ code
    def emit(self, module: ir.Module, name: Callable[[str], str]) -> None:
        n_in = len(self.operands)
        fn, b, lo, hi, ptrs = kernel_function(module, name("main"), n_in + len(self.out_dtypes))

        def body(offsets: list[ir.Value]) -> None:
            loaded = []
            for k in range(n_in):
                dt = self.op_dtypes[k]
                raw = load(b, ptrs[k], offsets[k], STORAGE[dt], align=dtype(dt).np_dtype.itemsize)
                loaded.append(load_scalar(b, raw, dt))
            results = self._compute(b, loaded)
            for j, r in enumerate(results):
                store(b, store_value(b, r), ptrs[n_in + j], offsets[n_in + j], align=self.out_dtypes[j].itemsize)

        strided_loops(b, lo, hi, self.dims, self.strides, [const(I64, 0)] * len(self.strides), body)
        b.ret_void()

    def _compute(self, b: ir.IRBuilder, loaded: list[Scalar]) -> list[Scalar]:
        node = self.node
        by_src = {src[1] if src[0] == "arg" else id(src[1]): s for src, s in zip(self.operands, loaded)}
        if node.op != "Fused":
            args = [self.scalars.get(i, by_src.get(i)) if v is not None else None for i, v in enumerate(node.inputs)]
            return emit(b, node, args, const_of=lambda i: self.known_scalars.get(i))
        body = node.body
        env: dict[int, Scalar] = {}
        consts: dict[int, float] = {}
        for i, p in enumerate(body.inputs):
            env[id(p)] = self.scalars.get(i, by_src.get(i))
            if i in self.known_scalars:
                consts[id(p)] = self.known_scalars[i]
        aux = iter(s for src, s in zip(self.operands, loaded) if src[0] == "aux")
        for c in body.constants.values():
            if c.data.size == 1:
                env[id(c)] = constant(c.type.dtype.name, c.data.reshape(()).item())
                if c.type.dtype.name in ("f32", "f64"):
                    consts[id(c)] = float(c.data.reshape(()))
            else:
                env[id(c)] = next(aux)
        for n in body:
            args = [env[id(v)] if v is not None else None for v in n.inputs]
            outs = emit(b, n, args, const_of=lambda i, n=n: consts.get(id(n.inputs[i])) if n.inputs[i] is not None else None)
            for v, s in zip(n.outputs, outs):
                env[id(v)] = s
        return [env[id(v)] for v in body.outputs]

    # ------------------------------------------------------------------ running
    def bind(self, fn, runner):
        operands = [src[1] for src in self.operands]   # node input indices and constant arrays
        expect = [(src[1], shape) for src, shape in zip(self.operands, self.op_shapes) if src[0] == "arg"]
        return launcher(self, fn("main"), runner, self.dims[0], operands, expect, self.cost,
                        _GRAIN if len(self.dims) == 1 else 1)
