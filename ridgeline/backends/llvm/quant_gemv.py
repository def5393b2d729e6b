"""Packed int4/int8 weight-only GEMV: a ``Fused`` ``dequant-matmul`` kernel (``quantize``'s
``DequantizeLinear`` + ``MatMul``) run on the packed codes, dequantized in vector registers.

Without it the executor folds the ``DequantizeLinear`` of the constant weight at plan time and
the GEMM streams a float32 weight (4 bytes per weight); here the weight stays packed — int4 two
codes per byte (0.5 byte per weight), int8 one — with one float32 scale and zero point per
(output channel, group); the ``-asym`` schemes' float offset ``m`` (``q·s + m``) is the float
zero point ``−m/s``. Decode-sized products (a few rows) are bound by reading the weight,
so this is the form that can reach the memory roofline.

Layout, prepared once at bind time from the constant operands: output channel n's codes are one
contiguous row, group after group; each group is cut into *chunks* of ``CHUNK`` codes (16
bytes: 32 int4 codes — byte j holds code j in its low nibble and code 16 + j in its high one, so
both nibbles meet 16 consecutive activations — or 16 int8 codes), the last chunk of a group
padded with zero codes (a group size that is not a multiple of the chunk costs that padding;
32, 64, 128 and per-channel rows of a multiple of 32 cost none). Signed codes are offset by 8 /
128 and so are their zero points. Scales ``S[n, g]`` and zero points ``Z[n, g]`` per group g of
``block`` input channels (the last group may be shorter; per-channel weights are one group).

The kernel, for each output channel (threads split N in fixed chunks, so a result never depends
on the thread count): per chunk, one 16-byte load, the nibbles split with ``and``/``lshr`` on
``<16 x i8>``, converted to float and the zero point subtracted (exact: small integers), then
one fma per 16 activations and row into a per-group accumulator; at the end of a group the
accumulator is scaled by the group's scale into the row's total, ``y[m, n] = Σ_g s_g ·
Σ_{k∈g} x[m, k] · (q[n, k] − z_g)`` — the reference's ``x · ((q − z) · s)`` summed in another
order (float32, as the reference's GEMM). Activations past a group's end are masked loads
(zero), so padded codes add nothing.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir

from ...ir import Node
from .irutil import (
    F32,
    I8,
    I64,
    Var,
    address,
    call_intrinsic,
    const,
    kernel_function,
    load,
    load_lanes,
    loop,
    splat,
    store,
)
from .lowering import Lowering, Unsupported, launcher

__all__ = ["CHUNK", "MAX_ROWS", "QuantGemvLowering", "pack_codes"]

#: rows (tokens) up to which the packed kernel runs; larger products are compute-bound and go
#: to the float GEMM on the weight dequantized once at plan time
MAX_ROWS = 16
_OFFSET = {"i4": (8, 4), "u4": (0, 4), "i8": (128, 8), "u8": (0, 8)}
#: codes per 16-byte chunk, by code width
CHUNK = {4: 32, 8: 16}
_LANES = 16                      # activations per vector: one chunk's int8 codes, half an int4 chunk
_V16F = ir.VectorType(F32, _LANES)
_V16B = ir.VectorType(I8, _LANES)
#: output channels per parallel work item (a chunk of N one thread computes in order)
_GRAIN = 8


def pack_codes(codes: np.ndarray, block: int, bits: int) -> np.ndarray:
    """Unsigned codes (N × K) in the kernel's layout: rows of ``groups × chunks per group × 16``
    bytes (see the module docstring)."""
    n, k = codes.shape
    chunk = CHUNK[bits]
    groups, per = -(-k // block), -(-block // chunk)
    slots = np.zeros((n, groups, per * chunk), np.uint8)
    for g in range(groups):
        part = codes[:, g * block:min(k, (g + 1) * block)]
        slots[:, g, :part.shape[1]] = part
    if bits == 8:
        return slots.reshape(n, -1)
    halves = slots.reshape(n, groups, per, 2, _LANES)          # [..., 0, j]: code j, [..., 1, j]: code 16 + j
    return (halves[..., 0, :] | (halves[..., 1, :] << 4)).reshape(n, -1)


class QuantGemvLowering(Lowering):
    """The packed GEMV of a ``dequant-matmul`` node whose weight, scales and zero points are
    constants (``known``); ``Unsupported`` (with the reason) for any other form."""

    def __init__(self, node: Node, in_shapes, known):
        body = list(node.body) if node.body is not None else []
        if len(body) < 2 or body[0].op != "DequantizeLinear" or body[-1].op != "MatMul":
            raise Unsupported("the packed GEMV takes DequantizeLinear + MatMul without an epilogue")
        dq, mm = body[0], body[-1]
        pos = {id(v): i for i, v in enumerate(node.body.inputs)}
        mi, gi, weight = _offset_form(body, pos, known)     # -asym's float offset: DequantizeLinear + m
        if mm.inputs[1] is not weight or id(mm.inputs[0]) not in pos or node.body.outputs != [mm.outputs[0]]:
            raise Unsupported("the kernel is not MatMul(x, DequantizeLinear(weight) [+ offset])")
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
        if mi is not None:      # q·s + m = (q − z)·s with the float zero point z = −m/s
            m = np.asarray(known[mi], np.float64)
            if m.size != sg.size:
                raise Unsupported("the offset is not one per group")
            if gi is not None and not np.array_equal(np.asarray(gi).reshape(-1), np.arange(k) // block):
                raise Unsupported("the offset is not gathered as k // group")
            zg = -m.reshape(-1, n).T.reshape(sg.shape) / sg
        self.block = min(block, k)
        self.groups = -(-k // self.block)
        self.packed = pack_codes((q.astype(np.int64) + offset).T, self.block, self.bits)
        self.scales = np.ascontiguousarray(sg, np.float32)
        self.zeros = np.ascontiguousarray(zg + offset, np.float32)
        self.node, self.m, self.n, self.k = node, rows, n, k
        self.in_shapes = [tuple(x) if x is not None else None for x in in_shapes]
        self.out_shapes, self.out_dtypes = [tuple(node.outputs[0].type.shape)], [np.float32]
        self.cost = float(self.packed.nbytes + 4 * rows * (k + n) + 2 * rows * k * n)

    def emit(self, module, name):
        _, b, lo, hi, (X, P, S, Z, Y) = kernel_function(module, name("main"), 5)
        M, N, K, B, G = self.m, self.n, self.k, self.block, self.groups
        chunk = CHUNK[self.bits]
        per = -(-B // chunk)
        row_bytes = self.packed.shape[1]
        zero = const(_V16F, 0.0)
        with loop(b, lo, hi, name="n") as nn:
            prow = b.mul(nn, const(I64, row_bytes))
            total = [Var(b, _V16F, zero, f"total{m}") for m in range(M)]

            def group(g, width):
                """One group of ``width`` input channels starting at ``g · B``: Σ x·(q − z), scaled."""
                gi = b.add(b.mul(nn, const(I64, G)), g)
                sc, zp = load(b, S, gi, F32), splat(b, load(b, Z, gi, F32), _LANES)
                dots = [Var(b, _V16F, zero, f"dot{m}") for m in range(M)]
                gbyte = b.add(prow, b.mul(g, const(I64, per * 16)))
                gk = b.mul(g, const(I64, B))

                def do_chunk(c, active):
                    """Chunk ``c`` of the group; ``active``: its codes that are real (static)."""
                    raw = b.load(address(b, P, b.add(gbyte, b.mul(c, const(I64, 16))), I8, 16), typ=_V16B, align=1)
                    if self.bits == 4:
                        halves = [b.and_(raw, const(_V16B, 15)), b.lshr(raw, const(_V16B, 4))]
                    else:
                        halves = [raw]
                    k0 = b.add(gk, b.mul(c, const(I64, chunk)))
                    for h, codes in enumerate(halves):
                        live = min(_LANES, max(0, active - h * _LANES))
                        if live == 0:
                            continue
                        w = b.fsub(b.uitofp(codes, _V16F), zp)                 # exact: small integers
                        for m in range(M):
                            xv = load_lanes(b, X, b.add(k0, const(I64, h * _LANES + m * K)), _V16F, live)
                            dots[m].set(call_intrinsic(b, "fma", xv, w, dots[m].get()))

                full, tail = divmod(width, chunk)
                if full:
                    with loop(b, 0, full, name="c") as c:
                        do_chunk(c, chunk)
                if tail:
                    do_chunk(const(I64, full), tail)
                scv = splat(b, sc, _LANES)
                for m in range(M):
                    total[m].set(call_intrinsic(b, "fma", dots[m].get(), scv, total[m].get()))

            last = K - (G - 1) * B
            uniform = G if last == B else G - 1
            if uniform:
                with loop(b, 0, uniform, name="g") as g:
                    group(g, B)
            if uniform < G:
                group(const(I64, G - 1), last)
            for m in range(M):
                store(b, _tree_sum(b, total[m].get()), Y, b.add(const(I64, m * N), nn))
        b.ret_void()

    def bind(self, fn, runner):
        xa = self.x_arg
        return launcher(self, fn("main"), runner, self.n, [xa, self.packed, self.scales, self.zeros],
                        [(xa, self.in_shapes[xa])], self.cost, _GRAIN)


def _offset_form(body: list, pos: dict, known) -> tuple[int | None, np.ndarray | None, object]:
    """For ``DequantizeLinear → [Gather(m, indices)] → Add(·, m) → MatMul`` (the ``-asym``
    schemes' float offset): (the kernel input holding ``m``, the Gather's constant indices (the
    caller checks they are k // group), the Add's output); for the plain form (None, None,
    the DequantizeLinear's output); ``Unsupported`` for anything else."""
    dq = body[0]
    if len(body) == 2:
        return None, None, dq.outputs[0]
    add = body[-2]
    if add.op != "Add" or len(body) > 4 or dq.outputs[0] not in add.inputs:
        raise Unsupported("the packed GEMV takes DequantizeLinear [+ a per-group offset] + MatMul")
    m = add.inputs[1] if add.inputs[0] is dq.outputs[0] else add.inputs[0]
    gi = None
    if len(body) == 4:
        g = body[1]
        if g.op != "Gather" or g.outputs[0] is not m or g.attr("axis") not in (0, -2):
            raise Unsupported("the offset is not gathered per group along K")
        m, idx = g.inputs[0], g.inputs[1]
        gi = known[pos[id(idx)]] if pos.get(id(idx)) in known else (idx.data if idx.has_data else None)
        if gi is None:
            raise Unsupported("the offset's gather indices are not constants")
    if id(m) not in pos or pos[id(m)] not in known:
        raise Unsupported("the offset is not a constant kernel input")
    return pos[id(m)], gi, add.outputs[0]


def _tree_sum(b: ir.IRBuilder, v: ir.Value) -> ir.Value:
    """The lanes of ``v`` summed pairwise (a fixed order: the same result on every run)."""
    n = v.type.count
    while n > 1:
        n //= 2
        lo = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(n))))
        hi = b.shuffle_vector(v, v, ir.Constant(ir.VectorType(ir.IntType(32), n), list(range(n, 2 * n))))
        v = b.fadd(lo, hi)
    return b.extract_element(v, const(ir.IntType(32), 0))
