"""Packed int4/int8 weight-only GEMV: a ``Fused`` ``dequant-matmul`` kernel (``quantize``'s
``DequantizeLinear`` + ``MatMul``) run on the packed codes, dequantized in registers.

Without it the executor folds the ``DequantizeLinear`` of the constant weight at plan time and
the GEMM streams a float32 weight (4 bytes per weight); here the weight stays packed — int4 two
codes per byte (0.5 byte per weight), int8 one — with one float32 scale and zero point per
(output channel, group). Decode-sized products (a few rows) are bound by reading the weight,
so this is the form that can reach the memory roofline.

Layout, prepared once at bind time from the constant operands: codes ``P[n, ·]`` along K for
output channel n (unsigned: signed codes are offset by 8 / 128 and so are their zero points),
scales ``S[n, g]`` and zero points ``Z[n, g]`` per group g of ``block`` input channels (the last
group may be shorter; per-channel weights are one group). Each weight is dequantized in
registers, ``w = (P[n, k] − Z[n, g]) · S[n, g]``, and accumulated in float64 (free at the memory
roofline; the result is the dot product the reference computes, rounded once):
``y[m, n] = Σ_k x[m, k] · w``.
"""

from __future__ import annotations

import numpy as np

from ...ir import Node
from .elementwise import describe_node
from .irutil import F32, F64, I1, I8, I32, I64, REDUCE_FLAGS, Var, const, kernel_function, load, loop, store
from .lowering import Lowering, Unsupported, check_inputs, outputs, ptr

__all__ = ["MAX_ROWS", "QuantGemvLowering"]

#: rows (tokens) up to which the packed kernel runs; larger products are compute-bound and go
#: to the float GEMM on the weight dequantized once at plan time
MAX_ROWS = 16
_OFFSET = {"i4": (8, 4), "u4": (0, 4), "i8": (128, 8), "u8": (0, 8)}


class QuantGemvLowering(Lowering):
    """The packed GEMV of a ``dequant-matmul`` node whose weight, scales and zero points are
    constants (``known``); ``Unsupported`` (with the reason) for any other form."""

    def __init__(self, node: Node, in_shapes, known):
        body = list(node.body) if node.body is not None else []
        if len(body) != 2 or body[0].op != "DequantizeLinear" or body[1].op != "MatMul":
            raise Unsupported("the packed GEMV takes DequantizeLinear + MatMul without an epilogue")
        dq, mm = body
        pos = {id(v): i for i, v in enumerate(node.body.inputs)}
        if mm.inputs[1] is not dq.outputs[0] or id(mm.inputs[0]) not in pos or node.body.outputs != [mm.outputs[0]]:
            raise Unsupported("the kernel is not MatMul(x, DequantizeLinear(weight))")
        qi = [pos.get(id(v)) for v in dq.inputs]
        if any(i is None or i not in known for i in qi):
            raise Unsupported("the weight, scales or zero points are not constants")
        self.x_arg = pos[id(mm.inputs[0])]
        xs = in_shapes[self.x_arg]
        q = np.asarray(known[qi[0]])
        dt = node.inputs[qi[0]].type.dtype.name
        if dt not in _OFFSET or q.ndim != 2 or xs is None or node.inputs[self.x_arg].type.dtype.name != "f32":
            raise Unsupported(f"the packed GEMV takes f32 activations and 2-D int4/int8 weights, not {dt}")
        k, n = q.shape
        rows = int(np.prod(xs[:-1])) if len(xs) > 1 else 1
        if xs[-1] != k or rows > MAX_ROWS or rows == 0 or n == 0 or k == 0:
            raise Unsupported(f"{rows} rows: a GEMM, not a GEMV")
        axis = dq.attr("axis") % 2
        block = int(dq.attr("block_size") or 0)
        s = np.asarray(known[qi[1]], np.float64)
        offset, self.bits = _OFFSET[dt]
        z = np.asarray(known[qi[2]], np.float64) if len(qi) > 2 else np.zeros(s.shape)
        if block and axis == 0:                        # blocked along K: [G, N]
            sg, zg = s.reshape(-1, n).T, z.reshape(-1, n).T
        elif not block and axis == 1 and s.size == n:  # per output channel: one group
            sg, zg, block = s.reshape(n, 1), z.reshape(n, 1), k
        else:
            raise Unsupported("the packed GEMV takes weights blocked along K or per output channel")
        self.block = block
        self.groups = -(-k // block)
        codes = (q.astype(np.int64) + offset).T                         # N × K unsigned
        if self.bits == 4:
            kp = k + (k % 2)
            padded = np.zeros((n, kp), np.int64)
            padded[:, :k] = codes
            self.packed = ((padded[:, 0::2] & 15) | ((padded[:, 1::2] & 15) << 4)).astype(np.uint8)
        else:
            self.packed = np.ascontiguousarray(codes, dtype=np.uint8)
        self.scales = np.ascontiguousarray(sg, np.float32)
        self.zeros = np.ascontiguousarray(zg + offset, np.float32)
        self.node, self.m, self.n, self.k = node, rows, n, k
        self.in_shapes = [tuple(x) if x is not None else None for x in in_shapes]
        self.out_shape = tuple(node.outputs[0].type.shape)
        self.cost = float(self.packed.nbytes + 4 * rows * (k + n) + 2 * rows * k * n)

    def emit(self, module, name):
        _, b, lo, hi, (X, P, S, Z, Y) = kernel_function(module, name("main"), 5)
        M, N, K, B, G = self.m, self.n, self.k, self.block, self.groups
        row_bytes = self.packed.shape[1]
        with loop(b, lo, hi, name="n") as nn, loop(b, 0, M, name="m") as m:
            acc = Var(b, F64, const(F64, 0.0), "acc")
            xrow = b.mul(m, const(I64, K))
            prow = b.mul(nn, const(I64, row_bytes))
            with loop(b, 0, G, name="g") as g:
                k0 = b.mul(g, const(I64, B))
                k1 = b.add(k0, const(I64, B))
                k1 = b.select(b.icmp_signed("<", k1, const(I64, K)), k1, const(I64, K))
                gi = b.add(b.mul(nn, const(I64, G)), g)
                sc, zp = b.fpext(load(b, S, gi, F32), F64), b.fpext(load(b, Z, gi, F32), F64)
                with loop(b, k0, k1, name="k") as kk:
                    if self.bits == 4:
                        byte = load(b, P, b.add(prow, b.ashr(kk, const(I64, 1))), I8)
                        wide = b.zext(byte, I32)
                        odd = b.trunc(b.and_(kk, const(I64, 1)), I1)
                        code = b.select(odd, b.lshr(wide, const(I32, 4)), b.and_(wide, const(I32, 15)))
                    else:
                        code = b.zext(load(b, P, b.add(prow, kk), I8), I32)
                    # the weight as DequantizeLinear rounds it, (q - z) · s, then the product
                    wv = b.fmul(b.fsub(b.uitofp(code, F64), zp), sc)
                    xv = load(b, X, b.add(xrow, kk), F32)
                    acc.set(b.fadd(acc.get(), b.fmul(b.fpext(xv, F64), wv), flags=REDUCE_FLAGS))   # lanes
            store(b, b.fptrunc(acc.get(), F32), Y, b.add(b.mul(m, const(I64, N)), nn))
        b.ret_void()

    def bind(self, fn, runner):
        kern = fn("main")
        keep = (self.packed, self.scales, self.zeros)
        fixed = [ptr(a) for a in keep]
        shape, n, cost, xa = self.out_shape, self.n, self.cost, self.x_arg
        expect = [(xa, self.in_shapes[xa])]
        name = describe_node(self.node)

        def run(args, outs):
            (out,) = outputs(outs, [shape], [np.float32])
            check_inputs(name, args, expect)
            runner.launch(kern, n, [ptr(args[xa])] + fixed + [ptr(out)], cost)
            return (out,)
        run.keep = keep
        return run


def lower_quant_gemv(node: Node, in_shapes, known, options) -> Lowering:
    """The packed GEMV of a ``dequant-matmul`` node (``Unsupported`` otherwise)."""
    return QuantGemvLowering(node, in_shapes, known)
