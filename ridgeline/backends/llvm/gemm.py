"""Matrix products: a tiled, vectorized f32 GEMM generated for the host, or the BLAS numpy has.

The JIT kernel follows the GotoBLAS/BLIS loop order (a constant B packed once, A not): for each task (a block of
MC rows x NC columns of one batch entry), K is walked in KC slices; within a slice the MR x NR
micro-kernel keeps MR x NR/W accumulators in vector registers (W = SIMD lanes; on AVX-512 6 x 64:
24 of the 32 zmm registers, ~10% faster than 8 x 32 on Zen 5 — tools/bench_backends.py --only
gemm), broadcasting one A element per row and loading NR/W B vectors per k. The KC x NR panel of
B stays in L1/L2 across the MR-row tiles and the MC x KC block of A in L2 across the column
tiles. Column tails use masked loads and stores (no access past the row's end), row tails a
smaller micro-kernel, all fixed at code generation since shapes are.
Decode steps (M < 8 rows) take the skinny path: all rows in one tile, B packed once at plan time
into contiguous K x NR panels streamed at the memory bandwidth, up to 16 vectors of accumulators
along N, tasks split along N (each output reduced by one thread in a fixed order: the same bits at
any thread count). Tasks are independent, so the executor splits them across cores. Gemm's alpha
and beta·C are applied when the last K slice is stored.

``gemm="auto"`` takes the JIT kernel wherever it applies and numpy's BLAS (``np.matmul`` into the
planned buffer) elsewhere: it matched or beat OpenBLAS from M = 2 up, and keeps its speed when
other processes share the cores (docs/backends.md); ``gemm="jit"`` / ``"blas"`` force one. Non-f32 products and transposed non-constant operands
always use BLAS; a transposed constant B is transposed once at compile time.
"""

from __future__ import annotations

import functools
import math
import mmap
import weakref
from typing import Sequence

import llvmlite.ir as ir
import numpy as np

from ...ir import Node
from ...ir.verifier import describe as describe_node
from .irutil import (F32, I64, Var, call_intrinsic, const, kernel_function, load, load_lanes, loop, splat,
                     store_lanes)
from .jit import host
from .lowering import Lowering, Unsupported, check_inputs, outputs, ptr
from .parallel import DEFAULT_THRESHOLD, EVEN_UNITS, finish
from .replay import replayable

__all__ = ["GemmLowering", "BlasLowering", "matmul_dims"]

#: (KC, MC): a K slice of KC rows and MC rows of A per task. The MC x KC block of A and one KC x NR
#: panel of B stay in L2 while the micro-tiles walk them: B's panels are streamed once per MC rows,
#: A's block once per NC columns. Measured on Zen 5 (1 MiB L2; one core, CPU time, load 12-14,
#: tools/bench_gemv.py --prefill and /tmp sweeps of 6 pairs): 512 x 144 (288 + 128 KiB) gave
#: 212-224 GFLOP/s on 128-512-row products of K 576-3072, onnxruntime's MatMul 207-220, the
#: former 256 x 60 172-214. Hosts with a smaller L2 keep 256 x 96 (an assumption, not measured).
BLOCKS_L2_1M = (512, 144)
BLOCKS_SMALL_L2 = (256, 96)
TILE_512 = (6, 4)   # (rows, vectors) with 32 vector registers: 24 accumulators; measured 6x4 > 8x2 by ~10% (docs/backends.md)


def matmul_dims(a: Sequence[int], b: Sequence[int]):
    """(batch shape, M, K, N) of numpy's matmul, with 1-D operands promoted."""
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    batch = np.broadcast_shapes(a2[:-2], b2[:-2])
    return batch, a2[-2], a2[-1], b2[-1], a2, b2


class BlasLowering(Lowering):
    """MatMul / Gemm through ``np.matmul`` (numpy's OpenBLAS for floats) into the planned buffer."""

    def __init__(self, node: Node, in_shapes, known):
        self.node = node
        self.out_shape = tuple(node.outputs[0].type.shape)
        self.out_dtype = node.outputs[0].type.dtype.np_dtype
        self.cost = 0.0

    def bind(self, fn, runner):
        node = self.node
        shape, dt = self.out_shape, self.out_dtype
        if node.op == "MatMul":
            def run(args, outs):
                (out,) = outputs(outs, [shape], [dt])
                np.matmul(args[0], args[1], out=out)
                return (out,)
            return run
        ta, tb = node.attr("transA"), node.attr("transB")
        alpha, beta = node.attr("alpha"), node.attr("beta")

        def run_gemm(args, outs):
            (out,) = outputs(outs, [shape], [dt])
            a = args[0].T if ta else args[0]
            b = args[1].T if tb else args[1]
            np.matmul(a, b, out=out)
            if alpha != 1.0:
                out *= dt.type(alpha)
            if len(args) > 2 and args[2] is not None:
                out += (dt.type(beta) * args[2]).astype(dt, copy=False)
            return (out,)
        return run_gemm


class Epilogue:
    """The elementwise tail of a ``Fused`` matmul-epilogue node, applied to the accumulators in
    registers when the last K slice is stored: the MatMul's result never goes to memory.

    Operands other than the product (a bias, a residual, a gate) are read as vectors at the tile's
    position through strides over the (M, N) output — 0 along a broadcast dim.
    """

    def __init__(self, node: Node, in_shapes, known, out_shape):
        from .scalar_ops import SUPPORTED_OPS
        body = node.body
        mms = [n for n in body if n.op == "MatMul"]
        if len(mms) != 1:
            raise Unsupported("an epilogue body without exactly one MatMul")
        self.mm = mms[0]
        params = {id(p): i for i, p in enumerate(body.inputs)}
        if any(v is None or id(v) not in params for v in self.mm.inputs):
            raise Unsupported("a MatMul inside the body that reads computed values")
        self.a_idx, self.b_idx = (params[id(v)] for v in self.mm.inputs)
        self.nodes = [n for n in body if n is not self.mm]
        self.result = body.outputs[0] if body.outputs else None
        for n in self.nodes:
            if n.op not in SUPPORTED_OPS or any(v.type.dtype.name not in ("f32", "bool") for v in n.outputs):
                raise Unsupported(f"{n.op} in a matmul epilogue")
        if len(body.outputs) != 1 or tuple(body.outputs[0].type.shape) != tuple(self.mm.outputs[0].type.shape):
            raise Unsupported("an epilogue that is not one result of the product's shape")
        n_cols = out_shape[-1] if out_shape else 1
        self.out_shape = tuple(out_shape)
        # operands: body inputs read by the tail, and the body's non-scalar constants
        self.sources: list[tuple[str, object]] = []    # ("arg", node input index) | ("aux", array)
        self.strides: list[tuple[int, int]] = []
        self.env: dict[int, tuple] = {id(self.mm.outputs[0]): ("acc",)}
        used = {id(v) for n in self.nodes for v in n.inputs if v is not None}
        for i, p in enumerate(body.inputs):
            if i in (self.a_idx, self.b_idx) or id(p) not in used:
                continue
            if p.type.dtype.name != "f32":
                raise Unsupported("an epilogue operand that is not f32")
            if i in known and known[i].size == 1:
                self.env[id(p)] = ("const", float(known[i].reshape(())), "f32")
                continue
            if in_shapes[i] is None:
                raise Unsupported("unknown shape")
            self.env[id(p)] = ("operand", len(self.sources))
            self.sources.append(("arg", i))
            self.strides.append(self._mn_strides(in_shapes[i], n_cols))
        for c in body.constants.values():
            if c.data is None:
                raise Unsupported("a body constant without data")
            if c.data.size == 1:
                if c.type.dtype.name not in ("f32", "bool"):
                    raise Unsupported("an epilogue constant that is not f32")
                self.env[id(c)] = ("const", c.data.reshape(()).item(), c.type.dtype.name)
                continue
            if c.type.dtype.name != "f32":
                raise Unsupported("an epilogue constant that is not f32")
            self.env[id(c)] = ("operand", len(self.sources))
            self.sources.append(("aux", np.ascontiguousarray(c.data)))
            self.strides.append(self._mn_strides(c.data.shape, n_cols))
        self.aux = [a for kind, a in self.sources if kind == "aux"]

    def _mn_strides(self, shape, n_cols) -> tuple[int, int]:
        """(row, column) element strides of an operand over the output seen as (M, N)."""
        from .lowering import broadcast_strides
        st = broadcast_strides(tuple(shape), self.out_shape)
        lead = [(d, s_) for d, s_ in zip(self.out_shape[:-1], st[:-1]) if d != 1]
        row = lead[-1][1] if lead else 0
        acc = row
        for d, s_ in reversed(lead):   # the lead dims must flatten into one M stride
            if s_ != acc:
                raise Unsupported("an epilogue operand whose rows do not flatten into M")
            acc = s_ * d if s_ else 0
        if st[-1] not in (0, 1):
            raise Unsupported("an epilogue operand strided along N")
        return row, st[-1]

    def apply(self, b, acc, load_operand) -> ir.Value:
        """The tail on one vector of accumulators; ``load_operand(k)`` loads operand k's vector."""
        from .scalar_ops import COMPUTE, Scalar, emit
        vt = acc.type
        vals: dict[int, Scalar] = {}
        consts: dict[int, float] = {}
        for key, src in self.env.items():
            if src[0] == "acc":
                vals[key] = Scalar(acc, "f32")
            elif src[0] == "const":
                _, value, dt = src
                vals[key] = Scalar(const(ir.VectorType(COMPUTE[dt], vt.count), value), dt)
                if dt == "f32":
                    consts[key] = float(value)
            else:
                vals[key] = Scalar(load_operand(src[1]), "f32")
        for n in self.nodes:
            args = [vals[id(v)] if v is not None else None for v in n.inputs]
            outs = emit(b, n, args, const_of=lambda i, n=n: consts.get(id(n.inputs[i])) if n.inputs[i] is not None else None)
            for v, r in zip(n.outputs, outs):
                vals[id(v)] = r
        return vals[id(self.result)].v



class GemmLowering(Lowering):
    """The JIT GEMM for f32 (see the module docstring)."""

    def __init__(self, node: Node, in_shapes, known):
        self.node = node
        self.epi = None
        self.a_arg, self.b_arg = 0, 1
        if node.op == "Fused":
            self.epi = Epilogue(node, in_shapes, known, tuple(node.outputs[0].type.shape))
            self.a_arg, self.b_arg = self.epi.a_idx, self.epi.b_idx
        if any(node.inputs[i].type.dtype.name != "f32" for i in (self.a_arg, self.b_arg)):
            raise Unsupported("the JIT GEMM takes f32")
        if in_shapes[self.a_arg] is None or in_shapes[self.b_arg] is None:
            raise Unsupported("unknown shape")
        self.aux: list[np.ndarray] = []
        self.b_known = None
        b_src, b_trans = known.get(self.b_arg), False   # the constant B as the graph holds it
        self.alpha, self.beta = 1.0, 0.0
        self.c_arg = None
        if node.op == "Gemm":
            if node.attr("transA"):
                raise Unsupported("transA")
            (m, k) = in_shapes[0]
            if node.attr("transB"):
                if 1 not in known:
                    raise Unsupported("transB of a computed B")
                b_trans = True   # transposed when packed (once per weight: _packed)
                n = known[1].shape[0]
            else:
                n = in_shapes[1][1]
            batch, a2, b2 = (), (m, k), (k, n)
            self.alpha, self.beta = float(node.attr("alpha")), float(node.attr("beta"))
            if len(node.inputs) > 2 and node.inputs[2] is not None:
                cs = in_shapes[2]
                if cs is None:
                    raise Unsupported("unknown shape")
                from .lowering import broadcast_strides
                self.c_strides = broadcast_strides(cs, (m, n))
                self.c_arg = 2
                self.c_shape = tuple(cs)
        else:
            sa, sb = in_shapes[self.a_arg], in_shapes[self.b_arg]
            if len(sb) == 2 and len(sa) >= 2:
                # weights: the batch dims of A are just more rows (one big product, not many small)
                batch, m, k, n = (), math.prod(sa[:-1]), sa[-1], sb[-1]
                a2, b2 = (m, k), tuple(sb)
            else:
                if self.epi is not None:
                    raise Unsupported("an epilogue on a batched product")
                batch, m, k, n, a2, b2 = matmul_dims(sa, sb)
        self.m, self.k, self.n = m, k, n
        if k == 0 and self.epi is not None:
            raise Unsupported("an empty product with an epilogue")
        self.batch = int(math.prod(batch))
        # per batch entry, the element offsets of A and B (broadcast batch dims repeat entries)
        if self.batch > 1 or len(batch):
            ia = np.broadcast_to(np.arange(math.prod(a2[:-2]) or 1).reshape(a2[:-2] or (1,)), batch).reshape(-1)
            ib = np.broadcast_to(np.arange(math.prod(b2[:-2]) or 1).reshape(b2[:-2] or (1,)), batch).reshape(-1)
            self.aux = [np.ascontiguousarray(ia * m * k, dtype=np.int64), np.ascontiguousarray(ib * k * n, dtype=np.int64)]
        self.w = host().vector_width_f32
        threads = max(1, host().cores)
        kc_blk, mc_blk = _blocks()
        if m >= 8:
            # 6 rows x 4 vectors: 24 accumulators; a B panel reused from L2 across row tiles; K in even
            # slices of about KC (K 576 ran 512 + 64; as one: 2-7% less CPU on K-576 products)
            self.mr, self.nv, self.kc = (TILE_512 if self.w >= 16 else (6, 2)) + (-(-k // max(1, round(k / kc_blk))),)
        else:
            # skinny (decode): every row in one tile, B streamed row by row in wide strips (reading B once is
            # the whole cost), no K slices; narrower strips where there are few, or a few that split unevenly
            self.mr, self.nv, self.kc = max(m, 1), max(2, 16 // max(m, 1)), max(k, 1)
            while self.nv > 2 and ((c := -(-n // (self.nv * self.w))) < 4 * threads or c % threads and c < 8 * threads):
                self.nv //= 2
        self.nr = self.nv * self.w
        # a constant B (the weights) is packed once, here: column tiles of NR, each a contiguous
        # K x NR panel (the tail zero-padded), so the micro-kernel streams B without TLB misses or masks
        self.packed = False
        if b_src is not None and self.batch == 1 and b_src.ndim == 2 and b_src.dtype == np.float32 and n and k:
            self.b_known = _packed(b_src, b_trans, self.nr)
            self.packed = True
        elif b_trans:
            self.b_known = np.ascontiguousarray(b_src.T)
        cols, self.mc = max(1, math.ceil(n / self.nr)), max(self.mr, mc_blk // self.mr * self.mr)   # whole tiles
        # skinny: at least 4 column tasks per core; else up to 256 columns, and where a task is worth a dispatch (the
        # runner's threshold) 4 tasks per core, narrowing columns, then rows. Smaller products keep whole blocks:
        # split finer, they paid a dispatch per task (GPT-2 at 32 tokens: 256 -> 335 us)
        self.nc = self.nr * (top := max(1, cols // (4 * threads) if m < 8 else min(cols, 256 // self.nr)))
        big = m >= 8 and 2.0 * self.batch * m * n * k >= 4 * threads * DEFAULT_THRESHOLD
        while big and self.batch * math.ceil(m / self.mc) * cols < 4 * threads and self.mc > self.mr:
            self.mc = max(self.mr, self.mc // 2 // self.mr * self.mr)
        need = min(cols, -(-4 * threads // (self.batch * math.ceil(m / self.mc)))) if big else 0
        self.tile = _cpu_tile(node)
        if self.tile is not None:   # a tile{target=<cpu>} schedule chose the blocks
            tm, tn, tk = self.tile
            self.mc, self.nc = max(self.mr, tm // self.mr * self.mr), max(self.nr, tn // self.nr * self.nr)
            self.kc = max(1, tk) if m >= 8 else self.kc
        elif m and n:
            # row blocks of even size (256 rows in blocks of 144 ran 144 + 112), then the widest column blocks the
            # cores finish first (4864 columns: 19 tasks ran 10 : 9); over 4 * EVEN_UNITS tasks, the widest, even
            self.mc = -(-m // -(-m // self.mc) // self.mr) * self.mr
            rows = [min(self.mc, m - i) for i in range(0, m, self.mc)] * self.batch
            few = [p for p in range(top, 0, -1) if need <= -(-cols // p) <= 4 * EVEN_UNITS // len(rows)]
            self.nc = self.nr * (-(-cols // -(-cols // top)) if not few else few[0] if threads < 2 else min(
                few, key=lambda p: finish([r * min(p, cols - j) for r in rows for j in range(0, cols, p)], threads)))
        self.mblocks = math.ceil(m / self.mc) if m else 0
        self.nblocks = math.ceil(n / self.nc) if n else 0
        self.tasks = self.batch * self.mblocks * self.nblocks
        self.in_shapes = [tuple(s) if s is not None else None for s in in_shapes]
        self.out_shape = tuple(node.outputs[0].type.shape)
        self.cost = 2.0 * self.batch * m * n * k
        if self.epi is not None:
            self.aux_epi = self.epi.aux

    # ----------------------------------------------------------------------------- code
    def emit(self, module, name):
        n_epi = len(self.epi.sources) if self.epi is not None else 0
        n_ptr = 3 + len(self.aux) + (1 if self.c_arg is not None else 0) + n_epi
        fn, b, lo, hi, ptrs = kernel_function(module, name("main"), n_ptr)
        A, B, C = ptrs[0], ptrs[1], ptrs[2]
        rest = ptrs[3:]
        offa = offb = None
        if self.aux:
            offa, offb = rest[0], rest[1]
            rest = rest[2:]
        bias = rest[0] if self.c_arg is not None else None
        self._epi_ptrs = rest[1:] if self.c_arg is not None else rest
        M, N, K = self.m, self.n, self.k
        mr, nr = self.mr, self.nr
        per_batch = self.mblocks * self.nblocks
        with loop(b, lo, hi, name="t") as t:
            bt = b.sdiv(t, const(I64, per_batch))
            rem = b.srem(t, const(I64, per_batch))
            ib = b.mul(b.sdiv(rem, const(I64, self.nblocks)), const(I64, self.mc))
            jb = b.mul(b.srem(rem, const(I64, self.nblocks)), const(I64, self.nc))
            a0 = load(b, offa, bt, I64) if offa is not None else const(I64, 0)
            b0 = load(b, offb, bt, I64) if offb is not None else const(I64, 0)
            c0 = b.mul(bt, const(I64, M * N))
            # full tiles end before the static tails of the last blocks
            last_i = b.icmp_signed(">=", b.add(ib, const(I64, self.mc)), const(I64, M))
            last_j = b.icmp_signed(">=", b.add(jb, const(I64, self.nc)), const(I64, N))
            i_full = b.select(last_i, const(I64, M - M % mr), b.add(ib, const(I64, self.mc)))
            j_full = b.select(last_j, const(I64, N - N % nr), b.add(jb, const(I64, self.nc)))
            KCs = self.kc
            with loop(b, 0, K, step=KCs, name="kc") as kc:
                kend = b.select(b.icmp_signed("<", b.add(kc, const(I64, KCs)), const(I64, K)),
                                b.add(kc, const(I64, KCs)), const(I64, K))
                first = b.icmp_signed("==", kc, const(I64, 0))
                lastk = b.icmp_signed(">=", kend, const(I64, K))
                args = (A, B, C, a0, b0, c0, kc, kend, first, lastk, bias)
                with loop(b, jb, j_full, step=nr, name="j") as j:
                    with loop(b, ib, i_full, step=mr, name="i") as i:
                        self._micro(b, mr, nr, i, j, *args)
                    if M % mr:
                        with b.if_then(last_i):
                            self._micro(b, M % mr, nr, const(I64, M - M % mr), j, *args)
                if N % nr:
                    with b.if_then(last_j):
                        jt = const(I64, N - N % nr)
                        with loop(b, ib, i_full, step=mr, name="it") as i:
                            self._micro(b, mr, N % nr, i, jt, *args)
                        if M % mr:
                            with b.if_then(last_i):
                                self._micro(b, M % mr, N % nr, const(I64, M - M % mr), jt, *args)
        b.ret_void()

    def _micro(self, b, mr, ncols, i, j, A, B, C, a0, b0, c0, kc, kend, first, lastk, bias):
        """C[i:i+mr, j:j+ncols] (+)= A[i:i+mr, kc:kend] @ B[kc:kend, j:j+ncols]."""
        w = self.w
        N, K = self.n, self.k
        vt = ir.VectorType(F32, w)
        nv = math.ceil(ncols / w)
        lanes = [min(w, ncols - c * w) for c in range(nv)]

        def vload(base, idx, c):
            return load_lanes(b, base, idx, vt, lanes[c])

        def vstore(v, base, idx, c):
            store_lanes(b, v, base, idx, lanes[c])

        crow = [b.add(c0, b.mul(b.add(i, const(I64, r)), const(I64, N))) for r in range(mr)]
        accs = []
        for r in range(mr):
            row = []
            for c in range(nv):
                cidx = b.add(crow[r], b.add(j, const(I64, c * w)))
                init = b.select(first, ir.Constant(vt, [const(F32, 0.0)] * w), vload(C, cidx, c))
                row.append(Var(b, vt, init))
            accs.append(row)
        arow = [b.add(a0, b.mul(b.add(i, const(I64, r)), const(I64, K))) for r in range(mr)]
        with loop(b, kc, kend, name="k") as k:
            if self.packed:   # panel j // NR, row k: NR contiguous floats, zero past N
                prow = b.mul(b.add(b.mul(b.sdiv(j, const(I64, self.nr)), const(I64, K)), k), const(I64, self.nr))
                bv = [load_lanes(b, B, b.add(prow, const(I64, c * w)), vt, w) for c in range(nv)]
            else:
                brow = b.add(b0, b.mul(k, const(I64, N)))
                bv = [vload(B, b.add(brow, b.add(j, const(I64, c * w))), c) for c in range(nv)]
            for r in range(mr):
                av = splat(b, load(b, A, b.add(arow[r], k), F32), w)
                for c in range(nv):
                    accs[r][c].set(call_intrinsic(b, "fma", av, bv[c], accs[r][c].get()))
        alpha = self.alpha
        for r in range(mr):
            for c in range(nv):
                v = accs[r][c].get()
                if alpha != 1.0 or bias is not None or self.epi is not None:
                    e = b.fmul(v, splat(b, const(F32, alpha), w)) if alpha != 1.0 else v
                    if bias is not None:
                        e = b.fadd(e, self._bias(b, bias, i, j, r, c, vload))
                    if self.epi is not None:
                        e = self.epi.apply(b, e, lambda k_, r=r, c=c: self._operand(b, k_, i, j, r, c, vload))
                    v = b.select(lastk, e, v)
                vstore(v, C, b.add(crow[r], b.add(j, const(I64, c * w))), c)

    def _operand(self, b, k, i, j, r, c, vload):
        """Epilogue operand k's vector at row i + r, columns j + c·W (a splat when broadcast)."""
        w = self.w
        sm, sn = self.epi.strides[k]
        base = self._epi_ptrs[k]
        row = b.mul(b.add(i, const(I64, r)), const(I64, sm))
        if sn == 0:
            return splat(b, load(b, base, row, F32), w)
        if sn != 1:
            raise Unsupported("an epilogue operand strided along N")
        return vload(base, b.add(row, b.add(j, const(I64, c * w))), c)

    def _bias(self, b, bias, i, j, r, c, vload):
        w = self.w
        si, sj = self.c_strides
        row = b.mul(b.add(i, const(I64, r)), const(I64, si))
        if sj == 0:
            v = splat(b, load(b, bias, row, F32), w)
        else:
            v = vload(bias, b.add(row, b.add(j, const(I64, c * w))), c)
        return b.fmul(v, splat(b, const(F32, self.beta), w))

    # ----------------------------------------------------------------------------- running
    def bind(self, fn, runner):
        kern = fn("main")
        shape, tasks, cost = self.out_shape, self.tasks, self.cost
        fixed_b = self.b_known
        aux = list(self.aux)
        aux_ptrs = [ptr(a) for a in aux]
        c_arg = self.c_arg
        a_arg, b_arg = self.a_arg, self.b_arg
        expect = [(a_arg, self.in_shapes[a_arg])] + ([] if fixed_b is not None else [(b_arg, self.in_shapes[b_arg])])
        epi_srcs = self.epi.sources if self.epi is not None else []
        epi_fixed = [ptr(src) if kind == "aux" else None for kind, src in epi_srcs]
        expect += [(src, self.in_shapes[src]) for kind, src in epi_srcs if kind == "arg"]
        epi_keep = self.epi.aux if self.epi is not None else []
        if c_arg is not None:
            expect.append((c_arg, self.c_shape))
        name = describe_node(self.node)
        bptr = ptr(fixed_b) if fixed_b is not None else None

        def run(args, outs):
            (out,) = outputs(outs, [shape], [np.float32])
            if out.size == 0:
                return (out,)
            if self.k == 0:
                out[...] = 0  # an empty sum (then the epilogue, done here by numpy)
                if c_arg is not None or self.alpha != 1.0:
                    return BlasLowering(self.node, None, None).bind(None, None)(args, [out])
                return (out,)
            check_inputs(name, args, expect)
            ptrs = [ptr(args[a_arg]), bptr if bptr is not None else ptr(args[b_arg]), ptr(out)]
            ptrs += aux_ptrs
            if c_arg is not None:
                ptrs.append(ptr(args[c_arg]))
            ptrs += [f if f is not None else ptr(args[src]) for f, (kind, src) in zip(epi_fixed, epi_srcs)]
            runner.launch(kern, tasks, ptrs, cost)
            return (out,)
        run.keep = (aux, fixed_b, epi_keep)
        return replayable(run) if self.k else run   # k == 0 writes zeros with numpy: not only launches


@functools.lru_cache(maxsize=1)
def _blocks() -> tuple[int, int]:
    """(KC, MC) for this host's L2 (see BLOCKS_L2_1M)."""
    from .calibrate import cache_sizes
    return BLOCKS_L2_1M if cache_sizes().get("L2", 0) >= 1 << 20 else BLOCKS_SMALL_L2


#: packed panels per constant weight, by (id of the weight's array, transposed, NR): every plan of a
#: graph (a prefill at each new length is a new plan) and every layer sharing a weight reads one
#: packed copy, made once per process instead of once per plan. An entry lives as long as the
#: weight's array does (dropped by a weakref callback), so the key's id cannot be reused meanwhile.
_PACKED: dict[tuple[int, bool, int], np.ndarray] = {}


def _packed(b: np.ndarray, transposed: bool, nr: int) -> np.ndarray:
    """``b`` (or ``b.T``) as column tiles of NR, each a contiguous K x NR panel, the last tile
    zero-padded past N: the layout the micro-kernel streams without TLB misses or masks."""
    key = (id(b), transposed, nr)
    hit = _PACKED.get(key)
    if hit is not None:
        return hit
    src = b.T if transposed else b
    k, n = src.shape
    tiles = math.ceil(n / nr)
    # on a cache line: numpy's arrays are only 16-byte aligned (measured 16 or 48 mod 64), so each
    # 64-byte panel load straddled two (1-thread GEMVs alone: 5 of 6 shapes 10-28% less CPU time;
    # a whole step: in noise). Panels are K x NR floats: with NR a multiple of 16 (AVX2, AVX-512)
    # every panel starts on a line.
    raw = np.zeros(tiles * k * nr + 16, np.float32)
    out = raw[(-raw.ctypes.data % 64) // 4:][:tiles * k * nr].reshape(tiles, k, nr)
    for t in range(tiles):   # one panel at a time: no padded copy of the whole matrix
        c0 = t * nr
        out[t, :, :min(nr, n - c0)] = src[:, c0:c0 + nr]
    out.setflags(write=False)
    _release(b)
    try:
        weakref.finalize(b, _PACKED.pop, key, None)
    except TypeError:   # an array that takes no weak reference: not cached
        return out
    _PACKED[key] = out
    return out


def _release(b: np.ndarray) -> None:
    """Drop the pages of a weight mapped from the model's file out of this process once it is
    packed: only the packed copy stays resident (the page cache keeps the bytes; a later read,
    such as an embedding's Gather, faults its pages back in)."""
    base = b
    while isinstance(base, np.ndarray):
        base = base.base
    base = getattr(base, "obj", None)   # np.frombuffer(a memoryview of the file's read-only mmap)
    if not isinstance(base, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED") or not \
            (b.flags.c_contiguous or b.flags.f_contiguous):
        return   # anything else may be the only copy
    start = b.ctypes.data - np.frombuffer(base, np.uint8, count=1).ctypes.data
    lo, hi = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE, (start + b.nbytes) // mmap.PAGESIZE * mmap.PAGESIZE
    if hi > lo:
        base.madvise(mmap.MADV_DONTNEED, lo, hi - lo)


def _cpu_tile(node: Node) -> tuple[int, int, int] | None:
    """(m, n, k) blocks of a GEMM tile schedule made for a cpu-family target (``tile{target=…}``
    records them in ``node.meta["tile"]``); a schedule for another kind of chip is ignored."""
    rec = node.meta.get("tile")
    if not isinstance(rec, dict) or rec.get("kernel", "gemm") != "gemm":
        return None
    shape = rec.get("shape") or {}
    try:
        from ...cost_models.capabilities import capabilities
        from ...cost_models.targets import get_target
        if not capabilities(get_target(rec.get("target", ""))).host_code:
            return None
        tm, tn, tk = (int(shape[d]) for d in ("m", "n", "k"))
    except Exception:  # no such target, or a record without m/n/k: keep the built-in blocking
        return None
    return (tm, tn, tk) if min(tm, tn, tk) > 0 else None


def lower_matmul(node: Node, in_shapes, known, options) -> Lowering:
    """The JIT GEMM or BLAS for a MatMul / Gemm node, by ``options["gemm"]``."""
    mode = options.get("gemm", "auto")
    if node.op == "Fused":   # a matmul epilogue: only the JIT kernel can fuse it
        if mode == "blas":
            raise Unsupported("gemm=blas leaves epilogues to run after the product")
        return GemmLowering(node, in_shapes, known)
    if mode == "blas" or any(v is not None and v.type.dtype.name != "f32" for v in node.inputs):
        return BlasLowering(node, in_shapes, known)
    try:
        low = GemmLowering(node, in_shapes, known)
    except Unsupported:
        if mode == "jit":
            raise
        return BlasLowering(node, in_shapes, known)
    return low
