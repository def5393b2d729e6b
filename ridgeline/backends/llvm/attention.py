"""Attention (ONNX opset 23/24) as one blocked kernel with an online softmax.

Per task — the query heads of one KV head times a block of positions, the "members" — the kernel
walks the keys in blocks of ``BK`` (aligned to BK): it computes the block's scores ``q·k · scale``
(softcapped, plus the additive mask) — a decode step per member, W keys at a time; a prefill for
all members at once, as a GEMM micro-kernel with the members in vector lanes — takes the block maximum,
rescales the running sum and the output accumulator by ``exp(m_old - m_new)`` and adds
``exp(s - m_new)·v`` (FlashAttention's recurrence). Scores never reach memory: the working set is one block of scores and one output
row. Keys outside what a query may see — past the causal frontier, outside the sliding window,
beyond a batch's ``nonpad_kv_seqlen`` — are skipped, which equals masking them (the query's
position is ``i + offset``: the past length with a KV cache input, ``nonpad_kv_seqlen - q_len``
for an external cache). An additive mask's keys at either end that are -inf or at most -1e30
(transformers' float32 minimum) are skipped too. A row with every key masked by -inf, or unseen,
gives zeros; a row masked entirely by large finite negatives averages over them, as the
reference does.

3-D inputs (batch, seq, heads·head_dim) are read in place through strides; grouped-query heads
read their shared KV head. With a KV cache, ``present_key``/``present_value`` are the
concatenation (written into the output buffers), and the kernel reads them.

The key count is a run-time argument, not a constant of the code: the K/V and mask strides that
depend on it come in an i64 array, and the lengths, offsets and present buffers are sized from the
arrays of each run — so one compiled kernel serves a whole generation while the KV cache grows
(llama.cpp's runtime-sized loops; the executor's polymorphic plans rely on it).
"""

from __future__ import annotations

import math
import sys

import numpy as np
from llvmlite import ir

from ...ir import Node
from ...ir.errors import BackendError
from . import mathlib as M
from ...ir.verifier import describe as describe_node
from .irutil import (F32, I1, I32, I64, PTR, REDUCE_FLAGS, Array, Var, address, call_intrinsic, const, kernel_function,
                     lanes, load, load_lanes, loop, masked_load, splat, store, store_lanes)
from .jit import host
from .lowering import Lowering, Unsupported, broadcast_strides, check_inputs, outputs, ptr
from .parallel import CHUNKS_PER_THREAD
from .replay import replayable

__all__ = ["AttentionLowering", "RotaryLowering"]

BK = 64   # keys per block: a block of scores stays in registers / L1
GMAX = 16   # query heads per task at most (their scores and output rows live on the task's stack)
#: (query head, position) pairs per task at most: a prefill's task takes a block of positions,
#: so each key and value row read from L2 serves all of them from L1 (one position per task
#: streamed every K/V row of its head from L2 again: GPT-2's attention at 256 tokens ran at
#: ~25 GFLOP/s, twice onnxruntime's unfused MatMul-Softmax-MatMul time)
QMAX = 16
KT = 4   # keys a tiled prefill scores at once (KT accumulators per vector of members)


def _even(tasks: int, cores: int) -> bool:
    """True when ``tasks`` split evenly enough over ``cores``: a multiple of them, or at least
    ``CHUNKS_PER_THREAD`` per core (claimed in chunks, the last ones even out)."""
    return tasks >= cores and tasks % cores == 0 or tasks >= CHUNKS_PER_THREAD * cores


class AttentionLowering(Lowering):
    def __init__(self, node: Node, in_shapes, known):
        self.node = node
        ins = node.inputs
        if any(v is not None and v.type.dtype.name not in ("f32", "bool") for v in ins[:6]):
            raise Unsupported("attention kernels take f32")
        if len(node.outputs) > 3 and node.outputs[3].uses:
            raise Unsupported("the qk_matmul_output output")
        if any(s is None for i, s in enumerate(in_shapes) if i < len(ins) and ins[i] is not None):
            raise Unsupported("unknown shape")
        q, k, v = in_shapes[0], in_shapes[1], in_shapes[2]
        self.three_d = len(q) == 3
        get = lambda i: in_shapes[i] if i < len(ins) and ins[i] is not None else None
        self.mask_shape, self.past_shape = get(3), get(4)
        if self.three_d:
            hq, hkv = node.attr("q_num_heads"), node.attr("kv_num_heads")
            b, s = q[0], q[1]
            d, dv = q[2] // hq, v[2] // hkv
            skv = k[1]
        else:
            b, hq, s, d = q
            hkv, skv, dv = k[1], k[2], v[3]
        self.past = self.past_shape[2] if self.past_shape is not None else 0
        self.b, self.hq, self.hkv, self.s, self.d, self.dv = b, hq, hkv, s, d, dv
        self.t = self.past + skv
        scale = node.attr("scale")
        self.scale = 1.0 / math.sqrt(d) if scale is None else float(scale)
        self.softcap = float(node.attr("softcap") or 0.0)
        self.causal = bool(node.attr("is_causal"))
        self.left, self.right = int(node.attr("left_window_size")), int(node.attr("right_window_size"))
        # element strides (b, h, s, d) of Q (b and s read at run time) and of Y
        if self.three_d:
            self.q_st = (s * hq * d, d, hq * d, 1)
            self.y_st = (s * hq * dv, dv, hq * dv, 1)
        else:
            self.q_st = (hq * s * d, s * d, d, 1)
            self.y_st = (hq * s * dv, s * dv, dv, 1)
        if self.mask_shape is not None:
            ms = tuple(self.mask_shape[:-1]) + (self.t,)
            try:
                self.m_st = broadcast_strides(ms, (b, hq, s, self.t))
            except Unsupported:
                raise Unsupported("a mask that does not broadcast to (batch, heads, q, kv)") from None
        # grouped-query heads: one task serves G query heads of one K/V head, so each key and
        # value row is read once per group, not once per query head (a mask that differs per
        # head trims each head's keys differently: then one head per task)
        # — but only where the tasks split evenly over the cores: as many per core, or enough of
        # them that the runner's chunks even out (a decode step of SmolLM2's 9 query heads over 3
        # KV heads was 3 tasks, 2:1 on two cores; one head per task is 9, 5:4)
        group = hq // hkv if hkv and hq % hkv == 0 else 1
        per_head_mask = self.mask_shape is not None and self.m_st[1] != 0
        rows = b * hq * s
        self.g = 1 if per_head_mask else max(x for x in range(1, min(group, GMAX) + 1)
                                             if group % x == 0 and (x == 1 or _even(rows // x, host().cores)))
        # positions per task: as many as fit QMAX beside the group, while the tasks still split
        # evenly over the cores (a decode step has one)
        heads = b * (hq // self.g)
        self.r = max(1, min(s, QMAX // self.g))
        while self.r > 1 and not _even(heads * -(-s // self.r), host().cores):
            self.r -= 1
        self.nrb = -(-s // self.r) if s else 0
        #: prefill: scores as a GEMM over the task's members as vector lanes (see _block_tiled),
        #: when they fill more than 3/4 of a vector on average; fewer (a decode step, a short chunk
        #: on a long past) score faster one member at a time. Kernel alone, 16 lanes, past 512-1024,
        #: tiled / base CPU time: 2-9 members 1.15-2.0, 12 a toss-up (0.83-1.07), 14-16 0.75-0.93.
        #: The members counted as if the tasks took up to 16 (not the even split over the cores, nor
        #: the key count): a shape gets one kernel, so one result's bits, whatever the cores and the step
        hg = 1 if per_head_mask else min(group, 16)
        self.tiled = s > 1 and 4 * hg * s > 3 * host().vector_width_f32 * -(-s // max(1, min(s, 16 // hg)))
        self.in_shapes = [tuple(x) if x is not None else None for x in in_shapes]
        self.out_shapes = [tuple(o.type.shape) for o in node.outputs[:3]]
        #: the past K/V may come as views of a longer buffer (the presents this kernel returned);
        #: 3-D Q/K/V as views with any (batch, position) strides (run() reads them)
        self.strided_inputs = frozenset({4, 5} if self.past_shape is not None else ()) | \
            frozenset({0, 1, 2} if self.three_d else ())
        self.cost = 4.0 * b * hq * s * self.t * (d + dv)

    # ------------------------------------------------------------------------------- code
    def emit(self, module, name):
        has_mask = self.mask_shape is not None
        fn, b, lo, hi, ptrs = kernel_function(module, name("main"), 8)
        Q, K, V, MASK, LEN, OFFS, Y, ST = ptrs
        S, HQ, D, DV, G, R = self.s, self.hq, self.d, self.dv, self.g, self.r
        HG, NRB = HQ // G, self.nrb   # head groups, and blocks of R positions, per batch entry
        group = HQ // self.hkv
        scale, cap = self.scale, self.softcap
        GR = G * R   # members of a task at most: (query head, position) pairs, index g·nr + r
        W = host().vector_width_f32
        vt = ir.VectorType(F32, W)
        tiled = self.tiled
        GRP = -(-GR // W) * W   # members padded to whole vectors (their lanes, tiled)
        sblk = Array(b, F32, GRP * BK)   # one block of scores per member (tiled: per key, members in lanes)
        nvd, nvv = -(-D // W), -(-DV // W)
        DVP = nvv * W                   # a member's output row, padded to whole vectors
        acc = Array(b, F32, GR * DVP)   # the output rows being accumulated
        mrun = Array(b, F32, GRP)       # running maximum per member
        arun = Array(b, F32, GRP)       # the block's rescaling of the output row per member
        MB = max(1, min(8, 16 // max(nvv, 1)))   # members whose output rows the value loop holds at once (DV may be 0)
        lrun = Array(b, F32, GRP)       # running sum per member
        bmax = None if tiled else Array(b, vt, GR)   # block maximum per member, lane-wise
        zero, ninf = splat(b, const(F32, 0.0), W), splat(b, const(F32, float("-inf")), W)

        def vec_at(arr, index):
            return b.bitcast(arr.at(index), vt.as_pointer())
        # strides read once per launch: those that depend on the key count (K b, K h, V b, V h, mask
        # b, h, q, k), then the (b, s) strides of Q and the s strides of K and V (3-D inputs may be
        # views: the columns of a fused QKV product's Split)
        rt = [load(b, ST, const(I64, j), I64) for j in range(12)]
        q_st = (rt[8], const(I64, self.q_st[1]), rt[9])
        k_st = (rt[0], rt[1], rt[10])
        v_st = (rt[2], rt[3], rt[11])
        m_st = rt[4:8]

        def c(x):
            return x if isinstance(x, ir.Value) else const(I64, x)

        def off4(st, bi, h, pos):
            return b.add(b.add(b.mul(bi, c(st[0])), b.mul(h, c(st[1]))), b.mul(pos, c(st[2])))

        def at_most(x, bound):
            return b.select(b.icmp_signed("<", bound, x), bound, x)

        def at_least(x, bound):
            return b.select(b.icmp_signed(">", bound, x), bound, x)

        with loop(b, lo, hi, name="task") as task:   # tasks ordered (batch, head group, position block)
            # position blocks zigzag (0, last, 1, last-1, ...): causal blocks' work grows with the
            # position, so any run of tasks a core claims holds light and heavy ones alike
            kz = b.srem(task, const(I64, NRB))
            half = b.sdiv(kz, const(I64, 2))
            rb = b.select(b.icmp_signed("==", b.srem(kz, const(I64, 2)), const(I64, 0)),
                          half, b.sub(const(I64, NRB - 1), half))
            i0 = b.mul(rb, const(I64, R))
            nr = at_most(const(I64, R), b.sub(const(I64, S), i0))   # positions in this block
            h0 = b.mul(b.srem(b.sdiv(task, const(I64, NRB)), const(I64, HG)), const(I64, G))
            bi = b.sdiv(task, const(I64, NRB * HG))
            hk = b.sdiv(h0, const(I64, group))   # the K/V head every query head of this task reads
            offs, length = load(b, OFFS, bi, I64), load(b, LEN, bi, I64)
            # the task's members flat, m = g·nr + r: one runtime loop over them, what each reads
            # precomputed (nested loops over a constant G were unrolled G times by LLVM, and the
            # deeper nest cost its loop passes most of the kernel's compile time)
            gn = b.mul(const(I64, G), nr)
            qoff, mlo, mhi, mrows = (Array(b, I64, GRP) for _ in range(4))
            ustart, ulimit = Var(b, I64, length), Var(b, I64, const(I64, 0))   # the union of the ranges
            vi = ir.VectorType(I64, W)
            for z in range(0, GRP, W):   # every member's state, and the padding lanes': no keys
                for arr in (mlo, mhi, mrows):
                    b.store(const(vi, 0), b.bitcast(arr.at(const(I64, z)), vi.as_pointer()), align=8)
                b.store(ninf, vec_at(mrun, const(I64, z)), align=4)
                b.store(zero, vec_at(lrun, const(I64, z)), align=4)
            with loop(b, 0, gn, name="m0") as mi:
                # the keys this query may see: [start, limit) (causal frontier, window, padding)
                i = b.add(i0, b.srem(mi, nr))
                pos = b.add(i, offs)
                limit = length
                if self.causal:
                    limit = at_most(limit, b.add(pos, const(I64, 1)))
                if self.right >= 0:
                    limit = at_most(limit, b.add(pos, const(I64, self.right + 1)))
                start = const(I64, 0)
                if self.left >= 0:
                    start = at_least(start, b.sub(pos, const(I64, self.left)))
                if has_mask and G == 1:   # keys masked at either end (-inf, or <= -1e30) add exactly 0: not visited
                    start, limit = self._trim(b, MASK, m_st, bi, h0, i, start, limit)
                elif has_mask:   # G > 1 only when the mask is the same for every head (see __init__):
                    # the first head's members trim, the others take their position's range
                    trimmed = Var(b, I64), Var(b, I64)
                    with b.if_else(b.icmp_signed("<", mi, nr)) as (first, rest):
                        with first:
                            for var, x in zip(trimmed, self._trim(b, MASK, m_st, bi, h0, i, start, limit)):
                                var.set(x)
                        with rest:
                            for var, arr in zip(trimmed, (mlo, mhi)):
                                var.set(arr.get(b.srem(mi, nr)))
                    start, limit = trimmed[0].get(), trimmed[1].get()
                qoff.set(mi, off4(q_st, bi, b.add(h0, b.sdiv(mi, nr)), i))
                if has_mask:
                    mrows.set(mi, b.add(b.add(b.mul(bi, m_st[0]), b.mul(h0, m_st[1])), b.mul(i, m_st[2])))
                mlo.set(mi, start)
                mhi.set(mi, limit)
                ustart.set(at_most(ustart.get(), start))
                ulimit.set(at_least(ulimit.get(), limit))
                for cc in range(nvv):   # (vectors written here, not loops left for LLVM to vectorize)
                    b.store(zero, vec_at(acc, b.add(b.mul(mi, const(I64, DVP)), const(I64, cc * W))), align=4)
            # key blocks aligned to multiples of BK: every member sees the blocks (and, within
            # them, the lanes) it would see alone, so grouping never changes a result's bits; a
            # block holding none of a member's keys leaves its state as it was (exp(0) = 1, +0)
            us = ustart.get()
            if tiled:
                qt, lanes_m = self._pack_tiled(b, Q, qoff, mlo, mhi, mrows, nr, gn, GRP, vec_at, zero)
            with loop(b, b.sub(us, b.srem(us, const(I64, BK))), ulimit.get(), step=BK, name="jb") as jb:
                jend = at_most(b.add(jb, const(I64, BK)), ulimit.get())
                jfirst = at_least(jb, us)
                if tiled:
                    self._block_tiled(b, K, MASK, qt, sblk, mrun, lrun, arun, lanes_m, jb, jfirst, jend,
                                      off4(k_st, bi, hk, const(I64, 0)), k_st[2], has_mask)
                else:
                    with loop(b, 0, gn, name="m1") as mi:
                        bmax.set(mi, ninf)
                        for z in range(0, BK, W):
                            b.store(ninf, vec_at(sblk, b.add(b.mul(mi, const(I64, BK)), const(I64, z))), align=4)
                    # scores W keys at a time, per member over the groups of the block (aligned to W)
                    # that hold one of its keys: each key's products over d in vectors, then the W
                    # vectors reduced into one vector of W scores together (a transposing tree:
                    # ~2 shuffles a score, not a horizontal sum each)
                    with loop(b, 0, gn, name="ms") as mi:
                        lo_r, hi_r = mlo.get(mi), mhi.get(mi)
                        qo = qoff.get(mi)
                        qv = [load_lanes(b, Q, b.add(qo, const(I64, cc * W)), vt, D - cc * W) for cc in range(nvd)]
                        j_lo = at_least(jfirst, lo_r)
                        mmax = Var(b, vt, bmax.get(mi))
                        mrow = mrows.get(mi)   # (the mask is the same for every head of a task)
                        with loop(b, b.sub(j_lo, b.srem(j_lo, const(I64, W))), at_most(jend, hi_r), step=W, name="jq") as j0:
                            jus = [at_most(b.add(j0, const(I64, u)), b.sub(jend, const(I64, 1))) for u in range(W)]
                            # (rows past the block's end read its last one, then masked)
                            dots = []
                            for ju in jus:
                                ko = off4(k_st, bi, hk, ju)
                                d_acc = b.fmul(qv[0], load_lanes(b, K, ko, vt, D))
                                for cc in range(1, nvd):
                                    kv = load_lanes(b, K, b.add(ko, const(I64, cc * W)), vt, D - cc * W)
                                    d_acc = call_intrinsic(b, "fma", qv[cc], kv, d_acc)
                                dots.append(d_acc)
                            sc = b.fmul(_sum_lanes(b, dots), splat(b, const(F32, scale), W))
                            if cap:
                                capv = splat(b, const(F32, cap), W)
                                sc = b.fmul(capv, M.tanh(b, b.fdiv(sc, capv)))
                            lane = b.add(splat(b, j0, W), lanes(I64, tuple(range(W))))
                            if has_mask:   # W keys of a mask row in one load (run() pads the rows to the key
                                # count, so their stride is 1), no lane read past the block
                                live = b.icmp_signed("<", lane, splat(b, jend, W))
                                # (checked mode checks the last live lane's address as well as the
                                # first's, so the whole read; unchecked, that address is dead code)
                                last = b.sub(at_most(b.add(j0, const(I64, W)), jend), const(I64, 1))
                                address(b, MASK, b.add(mrow, last), F32)
                                sc = b.fadd(sc, masked_load(b, address(b, MASK, b.add(mrow, j0), F32), vt, live))
                            seen = b.and_(b.icmp_signed(">=", lane, splat(b, lo_r, W)),
                                          b.icmp_signed("<", lane, splat(b, hi_r, W)))
                            sc = b.select(seen, sc, splat(b, const(F32, float("-inf")), W))
                            spot = b.add(b.mul(mi, const(I64, BK)), b.sub(j0, jb))
                            b.store(sc, vec_at(sblk, spot), align=4)
                            mmax.set(call_intrinsic(b, "maximum", mmax.get(), sc))
                        bmax.set(mi, mmax.get())
                    with loop(b, 0, gn, name="me") as mi:
                        gb = b.mul(mi, const(I64, BK))
                        m_old = mrun.get(mi)
                        m_new = call_intrinsic(b, "maximum", m_old, call_intrinsic(b, "vector.reduce.fmaximum", bmax.get(mi), ret=F32))
                        m_use = b.select(b.fcmp_ordered("==", m_new, const(F32, float("-inf"))), const(F32, 0.0), m_new)
                        alpha = M.exp(b, b.fsub(m_old, m_use))
                        lsum = b.fmul(lrun.get(mi), alpha)
                        # exponentials over the whole block, W at a time
                        bsum = zero
                        for z in range(0, BK, W):
                            spot = vec_at(sblk, b.add(gb, const(I64, z)))
                            p = M.exp(b, b.fsub(b.load(spot, typ=vt, align=4), splat(b, m_use, W)))
                            b.store(p, spot, align=4)
                            bsum = b.fadd(bsum, p)
                        bsum = call_intrinsic(b, "vector.reduce.fadd", const(F32, 0.0), bsum, ret=F32,
                                              overload=[vt], fastmath=REDUCE_FLAGS)
                        lrun.set(mi, b.fadd(lsum, bsum))
                        mrun.set(mi, m_new)
                        arun.set(mi, alpha)
                # value rows into the output rows of MB members at once (each V row loaded once for
                # them, their rows in registers); a key a member cannot see has p = 0 and adds
                # exactly nothing. Past the last member the last chunk repeats it: the same values,
                # stored twice
                with loop(b, 0, gn, step=MB, name="pm") as f:
                    mis = [at_most(b.add(f, const(I64, u)), b.sub(gn, const(I64, 1))) for u in range(MB)]
                    spots = [[vec_at(acc, b.add(b.mul(mi, const(I64, DVP)), const(I64, cc * W))) for cc in range(nvv)]
                             for mi in mis]
                    accv = [[Var(b, vt, b.fmul(b.load(sp, typ=vt, align=4), splat(b, arun.get(mi), W))) for sp in row]
                            for mi, row in zip(mis, spots)]
                    with loop(b, jfirst, jend, name="jv") as j:
                        vo = off4(v_st, bi, hk, j)
                        vv = [load_lanes(b, V, b.add(vo, const(I64, cc * W)), vt, DV - cc * W) for cc in range(nvv)]
                        for mi, row in zip(mis, accv):
                            spot = b.add(b.mul(b.sub(j, jb), const(I64, GRP)), mi) if tiled else \
                                b.add(b.mul(mi, const(I64, BK)), b.sub(j, jb))
                            pv = splat(b, sblk.get(spot), W)
                            for x, v_ in zip(row, vv):
                                x.set(call_intrinsic(b, "fma", pv, v_, x.get()))
                    for row, xs in zip(spots, accv):
                        for sp, x in zip(row, xs):
                            b.store(x.get(), sp, align=4)
            with loop(b, 0, gn, name="mw") as mi:
                tot = lrun.get(mi)
                inv = b.select(b.fcmp_ordered("==", tot, const(F32, 0.0)), const(F32, 0.0),
                               b.fdiv(const(F32, 1.0), tot))
                yo = off4(self.y_st, bi, b.add(h0, b.sdiv(mi, nr)), b.add(i0, b.srem(mi, nr)))
                ga = b.mul(mi, const(I64, DVP))
                for cc in range(nvv):
                    row = b.load(vec_at(acc, b.add(ga, const(I64, cc * W))), typ=vt, align=4)
                    store_lanes(b, b.fmul(row, splat(b, inv, W)), Y, b.add(yo, const(I64, cc * W)), DV - cc * W)
        b.ret_void()

    def _pack_tiled(self, b, Q, qoff, mlo, mhi, mrows, nr, gn, GRP, vec_at, zero):
        """The task's queries transposed, ``qt[d·GRP + m]`` (members in lanes, padding lanes zero),
        and per vector of members: their key ranges, mask rows and which lanes are members."""
        W, D = zero.type.count, self.d
        qt = Array(b, F32, max(D, 1) * GRP)
        with loop(b, 0, D * GRP, step=W, name="qz") as z:
            b.store(zero, vec_at(qt, z), align=4)
        with loop(b, 0, gn, name="qm") as mi:
            qo = qoff.get(mi)
            with loop(b, 0, D, name="qd") as dd:
                qt.set(b.add(b.mul(dd, const(I64, GRP)), mi), load(b, Q, b.add(qo, dd), F32))
        vi = ir.VectorType(I64, W).as_pointer()
        per = [[b.load(b.bitcast(arr.at(const(I64, z)), vi), align=8) for arr in (mlo, mhi, mrows)]
               + [b.icmp_signed("<", lanes(I64, tuple(range(z, z + W))), splat(b, gn, W))] for z in range(0, GRP, W)]
        return qt, (per, mrows.get(b.sub(gn, const(I64, 1))), (mlo, mhi, mrows, nr))

    def _block_tiled(self, b, K, MASK, qt, sblk, mrun, lrun, arun, lanes_m, jb, jfirst, jend, kbase, kstride, has_mask):
        """One key block for every member of the task: scores as a GEMM micro-kernel — ``KT`` keys
        at once, each member vector of Q^T loaded once for them, each key element broadcast — so a
        key row read serves the whole task, with no reduction across lanes (llama.cpp / MLAS
        flash-attention tiling); then the online softmax lane-wise, scores stored per key
        (``sblk[(j - jb)·GRP + m]``). Each member's sums run over d and keys in order, whatever
        shares its vector: grouping never changes a result's bits."""
        per, mask_last, (mlo, mhi, mrows, nr) = lanes_m
        W = per[0][3].type.count
        vt = ir.VectorType(F32, W)
        GRP = len(per) * W
        zero, ninf = const(vt, 0.0), const(vt, float("-inf"))

        def vec(arr, index):
            return b.bitcast(arr.at(index), vt.as_pointer())
        if has_mask:   # does the mask add anything but 0 to a key some member sees in this block? (a
            # causal or padding mask, trimmed, does not: then no gathers; a row's values W at a time,
            # ~1/D of the scores' work — members past the first nr repeat their rows and ranges)
            nz = Var(b, ir.VectorType(I1, W), const(ir.VectorType(I1, W), 0))
            with loop(b, 0, nr, name="mz") as mi:
                lo, hi, row = mlo.get(mi), mhi.get(mi), mrows.get(mi)
                hi = b.select(b.icmp_signed("<", hi, jend), hi, jend)
                with loop(b, b.select(b.icmp_signed("<", jfirst, lo), lo, jfirst), hi, step=W, name="mzj") as j:
                    live = b.icmp_signed("<", b.add(splat(b, j, W), lanes(I64, tuple(range(W)))), splat(b, hi, W))
                    address(b, MASK, b.add(row, b.sub(b.select(b.icmp_signed("<", b.add(j, const(I64, W)), hi),
                                                               b.add(j, const(I64, W)), hi), const(I64, 1))), F32)
                    mv = masked_load(b, address(b, MASK, b.add(row, j), F32), vt, live)
                    nz.set(b.or_(nz.get(), b.fcmp_unordered("!=", mv, zero)))
            masked = call_intrinsic(b, "vector.reduce.or", nz.get(), ret=I1)
        bm = [Var(b, vt, ninf) for _ in per]
        last = b.sub(jend, const(I64, 1))
        with loop(b, jfirst, jend, step=KT, name="jk") as j0:
            js = [b.select(b.icmp_signed("<", last, b.add(j0, const(I64, u))), last, b.add(j0, const(I64, u)))
                  for u in range(KT)]   # (past the block's end: its last key again, stored twice)
            kos = [b.add(kbase, b.mul(ju, kstride)) for ju in js]
            accs = [[Var(b, vt, zero) for _ in per] for _ in js]
            with loop(b, 0, self.d, name="kd") as dd:
                qd = [b.load(vec(qt, b.add(b.mul(dd, const(I64, GRP)), const(I64, z * W))), typ=vt, align=4)
                      for z in range(len(per))]
                for ko, row in zip(kos, accs):
                    kd = splat(b, load(b, K, b.add(ko, dd), F32), W)
                    for x, q in zip(row, qd):
                        x.set(call_intrinsic(b, "fma", kd, q, x.get()))
            for ju, row in zip(js, accs):
                jv = splat(b, ju, W)
                for z, (x, (lo, hi, mrow, live)) in enumerate(zip(row, per)):
                    sc = b.fmul(x.get(), const(vt, self.scale))
                    if self.softcap:
                        capv = const(vt, self.softcap)
                        sc = b.fmul(capv, M.tanh(b, b.fdiv(sc, capv)))
                    if has_mask:   # each member's mask row at this key, one gather
                        scv = Var(b, vt, sc)
                        with b.if_then(masked):
                            address(b, MASK, b.add(mask_last, ju), F32)   # (checked mode: the last row's)
                            base = splat(b, b.ptrtoint(MASK, I64), W)
                            ptrs = b.inttoptr(b.add(base, b.mul(b.add(mrow, jv), const(ir.VectorType(I64, W), 4))),
                                              ir.VectorType(PTR, W))
                            scv.set(b.fadd(sc, call_intrinsic(b, "masked.gather", ptrs, const(I32, 4), live, zero,
                                                              ret=vt, overload=[vt, ptrs.type])))
                        sc = scv.get()
                    seen = b.and_(b.icmp_signed("<=", lo, jv), b.icmp_signed("<", jv, hi))
                    sc = b.select(seen, sc, ninf)
                    b.store(sc, vec(sblk, b.add(b.mul(b.sub(ju, jb), const(I64, GRP)), const(I64, z * W))), align=4)
                    bm[z].set(call_intrinsic(b, "maximum", bm[z].get(), sc))
        state = []
        for z, x in enumerate(bm):
            zi = const(I64, z * W)
            m_old = b.load(vec(mrun, zi), typ=vt, align=4)
            m_new = call_intrinsic(b, "maximum", m_old, x.get())
            m_use = b.select(b.fcmp_ordered("==", m_new, ninf), zero, m_new)
            alpha = M.exp(b, b.fsub(m_old, m_use))
            b.store(alpha, vec(arun, zi), align=4)
            b.store(m_new, vec(mrun, zi), align=4)
            state.append((zi, m_use, b.fmul(b.load(vec(lrun, zi), typ=vt, align=4), alpha), Var(b, vt, zero)))
        with loop(b, jfirst, jend, name="je") as j:
            row = b.mul(b.sub(j, jb), const(I64, GRP))
            for zi, m_use, _, bsum in state:
                spot = vec(sblk, b.add(row, zi))
                p = M.exp(b, b.fsub(b.load(spot, typ=vt, align=4), m_use))
                b.store(p, spot, align=4)
                bsum.set(b.fadd(bsum.get(), p))
        for zi, _, lsum, bsum in state:
            b.store(b.fadd(lsum, bsum.get()), vec(lrun, zi), align=4)

    @staticmethod
    def _trim(b, MASK, m_st, bi, h, i, start, limit):
        """[start, limit) without the keys at either end whose mask is -inf or at most -1e30 (a
        causal or padding mask given as an additive tensor — exporters' way of saying is_causal,
        transformers' with float32's minimum — then costs what the causal kernel costs, instead of
        scoring every key to add zero). Beside a key it keeps, such a key's weight is exactly 0.
        A row with no other key keeps its whole range when one of its keys is finite (a row of
        finite minima averages them, as the reference does); a row all -inf stays empty (zeros,
        and no key scored: the pad rows of a left-padded prefill)."""
        row = b.add(b.add(b.mul(bi, m_st[0]), b.mul(h, m_st[1])), b.mul(i, m_st[2]))
        floor = const(F32, -1e30)
        lo, hi = Var(b, I64, start), Var(b, I64, limit)
        finite = Var(b, I1, const(I1, 0))   # a trimmed key was > -inf (only the top end can empty the range)
        W = host().vector_width_f32
        vt = ir.VectorType(F32, W)
        # W keys a step while W are left (the rows are padded to the key count: stride 1), then one:
        # a causal mask's row of T - i keys was T - i scalar steps (GPT-2's prefill 256: 4.7M a run)
        for end, n in (("hi", W), ("hi", 1), ("lo", W), ("lo", 1)):
            cond = b.append_basic_block(f"trim.{end}{n}.cond")
            test = b.append_basic_block(f"trim.{end}{n}.test")
            step = b.append_basic_block(f"trim.{end}{n}.step")
            done = b.append_basic_block(f"trim.{end}{n}.done")
            b.branch(cond)
            b.position_at_end(cond)
            a, z = lo.get(), hi.get()
            b.cbranch(b.icmp_signed("<=", b.add(a, const(I64, n)), z), test, done)
            b.position_at_end(test)
            key = b.sub(z, const(I64, n)) if end == "hi" else a
            if n == 1:
                mval = load(b, MASK, b.add(row, b.mul(key, m_st[3])), F32)
                below, above = b.fcmp_ordered("<=", mval, floor), b.fcmp_ordered(">", mval, const(F32, float("-inf")))
            else:
                mval = load_lanes(b, MASK, b.add(row, key), vt, W)
                below = call_intrinsic(b, "vector.reduce.and", b.fcmp_ordered("<=", mval, splat(b, floor, W)), ret=I1)
                above = call_intrinsic(b, "vector.reduce.or", b.fcmp_ordered(">", mval, const(vt, float("-inf"))),
                                       ret=I1)
            b.cbranch(below, step, done)
            b.position_at_end(step)
            if end == "hi":
                hi.set(key)
                finite.set(b.or_(finite.get(), above))
            else:
                lo.set(b.add(a, const(I64, n)))
            b.branch(cond)
            b.position_at_end(done)
        whole = b.and_(b.icmp_signed(">=", lo.get(), hi.get()), finite.get())
        return b.select(whole, start, lo.get()), b.select(whole, limit, hi.get())

    # ------------------------------------------------------------------------------- running
    def _key_axes(self) -> dict[int, int]:
        """Input index -> the axis holding a key count (read from the arrays of each run)."""
        axes = {1: 1 if self.three_d else 2, 2: 1 if self.three_d else 2}
        if self.mask_shape is not None:
            axes[3] = len(self.mask_shape) - 1
        if self.past_shape is not None:
            axes[4] = axes[5] = 2
        return axes

    def bind(self, fn, runner):
        kern = fn("main")
        node = self.node
        B, HQ, HKV, S, D, DV = self.b, self.hq, self.hkv, self.s, self.d, self.dv
        G = self.g
        tasks = B * (HQ // G) * self.nrb   # one per (batch, group of query heads, block of positions)
        n_out = len(self.out_shapes)
        dts = [np.float32] * n_out
        three_d, has_past = self.three_d, self.past_shape is not None
        mask_shape = self.mask_shape
        mask_v = node.inputs[3] if mask_shape is not None else None
        readers = [u for u, at in mask_v.uses if at == 3 and u.op == "Attention"] if mask_v is not None else []
        shared, mask_key = len(readers) > 1, id(mask_v)
        owns = not shared or node is next(n for n in node.graph if any(n is u for u in readers))
        axes = self._key_axes()
        expect = [(i, tuple(None if axes.get(i) == a else n for a, n in enumerate(s)))
                  for i, s in enumerate(self.in_shapes) if s is not None]
        name = describe_node(node)
        dummy = np.zeros(1, np.float32)
        unused = [tuple(o.type.shape) for o in node.outputs[3:]]
        y_shape = self.out_shapes[0]
        caches = self.caches = (GrowingCache(), GrowingCache())
        loose = self.strided_inputs
        grows = has_past and n_out > 2

        def run(args, outs):
            check_inputs(name, args, expect, loose)   # the past's layout is _rows's business
            q, k, v = (_rows3(a) for a in args[:3]) if three_d else args[:3]
            skv = k.shape[axes[1]]
            past = args[4].shape[2] if has_past else 0
            t = past + skv
            shapes = [y_shape] + [(B, HKV, t, D), (B, HKV, t, DV)][:n_out - 1]
            if grows:   # the presents come from the caches
                shapes, outs = shapes[:1], outs[:1]
            outs = outputs([o if o is None or o.shape == s else None for o, s in zip(outs, shapes)], shapes, dts[:len(shapes)])
            if has_past:
                pk, pv = args[4], args[5]
                k4 = k if not three_d else k.reshape(B, skv, HKV, -1).transpose(0, 2, 1, 3)
                v4 = v if not three_d else v.reshape(B, skv, HKV, -1).transpose(0, 2, 1, 3)
                if n_out > 2:   # both presents go back to the caller: appended in place when they can
                    kk, kbuf = caches[0].append(pk, k4)
                    vv, vbuf = caches[1].append(pv, v4)
                    outs = (outs[0], kk, vv)
                else:
                    kbuf = outs[1] if n_out > 1 else np.empty((B, HKV, t, D), np.float32)
                    vbuf = np.empty((B, HKV, t, DV), np.float32)
                    np.concatenate([_rows(pk), k4], axis=2, out=kbuf)
                    np.concatenate([_rows(pv), v4], axis=2, out=vbuf)
                ck, cv = kbuf.shape[2], vbuf.shape[2]
                st = [HKV * ck * D, ck * D, HKV * cv * DV, cv * DV]
                kv_s = [D, DV]
            else:
                kbuf, vbuf = k, v
                for j, src in ((1, k), (2, v)):
                    if n_out > j:
                        if three_d:
                            src = src.reshape(B, skv, HKV, -1).transpose(0, 2, 1, 3)
                        np.copyto(outs[j], src)
                if three_d:
                    (kb, ks), (vb, vs) = (_st(k), _st(v))
                    st, kv_s = [kb, D, vb, DV], [ks, vs]
                else:
                    st, kv_s = [HKV * t * D, t * D, HKV * t * DV, t * DV], [D, DV]
            st += [*_st(q)] if three_d else [HQ * S * D, D]
            st += kv_s
            has_nonpad = len(args) > 6 and args[6] is not None
            sized = None if has_nonpad else _SIZES.get((B, HQ, S, t, past, mask_shape, *st))
            bias = dummy
            if sized is None:
                lengths = np.full(B, t, dtype=np.int64)
                offsets = np.full(B, past, dtype=np.int64)
            if has_nonpad:
                nonpad = np.ascontiguousarray(np.broadcast_to(args[6].reshape(-1).astype(np.int64), (B,)))
                lengths = np.minimum(nonpad, t)
                if not has_past:  # an external cache: queries are the last sq of the nonpad keys
                    offsets = nonpad - S
            m_st = (0, 0, 0, 0)
            if mask_shape is not None:
                m = args[3]
                if m.shape[-1] > t:
                    raise BackendError(f"{name}: a mask over {m.shape[-1]} keys, attention has {t} "
                                       f"(past {past} + {skv} new)")
                # every layer reads the same mask: the first in the graph builds the kernel's
                # float rows once a step, the others take them while their mask is that array
                hit = None if owns else _BIAS.get(mask_key)
                if hit is not None and hit[0] is m and hit[1] == t:
                    bias = hit[2]
                else:
                    bias = _bias(m, t)
                    if shared and owns:   # (no llvm owner — it fell back to numpy — no saving: a
                        # later reader would keep rows the caller has since changed in place)
                        _remember(_BIAS, mask_key, (m, t, bias))
                if sized is None:
                    try:
                        m_st = broadcast_strides(tuple(mask_shape[:-1]) + (t,), (B, HQ, S, t))
                    except Unsupported:
                        raise BackendError(f"{name}: a mask of shape {list(m.shape)} does not broadcast to "
                                           f"(batch, heads, q, kv) = {[B, HQ, S, t]}") from None
            if sized is not None:
                lengths, offsets, strides = sized
            else:
                strides = np.array(st[:4] + list(m_st) + st[4:], dtype=np.int64)
                if not has_nonpad:
                    _remember_sizes((B, HQ, S, t, past, mask_shape, *st), (lengths, offsets, strides))
            if tasks:
                runner.launch(kern, tasks, [ptr(q), ptr(kbuf), ptr(vbuf), ptr(bias), ptr(lengths), ptr(offsets),
                                            ptr(outs[0]), ptr(strides)], 4.0 * B * HQ * S * t * (D + DV))
            return outs + tuple(np.empty(s, np.float32) for s in unused)
        return run


def _sum_lanes(b, vs: list) -> ir.Value:
    """One vector whose lane u is the sum of ``vs[u]``'s lanes (len(vs) = lanes): pairs of vectors
    fold their items' halves together (two shuffles and an add), halving each item's width."""
    w = len(vs)
    width = w   # lanes per item; each vector holds w // width items, in order
    while width > 1:
        half = width // 2
        items = w // width
        nxt = []
        for x, y in zip(vs[0::2], vs[1::2]):
            lo = [k * width + l for k in range(items) for l in range(half)]
            hi = [k * width + half + l for k in range(items) for l in range(half)]
            lo = tuple(lo + [w + i for i in lo])
            hi = tuple(hi + [w + i for i in hi])
            nxt.append(b.fadd(b.shuffle_vector(x, y, lanes(I32, lo)), b.shuffle_vector(x, y, lanes(I32, hi))))
        vs, width = nxt, half
    return vs[0]


#: (shapes, key count, past, mask shape, K/V strides) -> the lengths, offsets and strides arrays an
#: attention kernel reads: the same for every layer of a step (30 in SmolLM2), so made once a step.
#: Read-only; a few entries (one per step size in flight)
_SIZES: dict[tuple, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


#: id of a mask Value read by several attention nodes -> (the array its first reader got, key
#: count, the float rows built from it); replaced whole, so a reader sees one step's triple
_BIAS: dict[int, tuple] = {}


def _remember(memo: dict, key, value) -> None:
    if len(memo) >= 8:
        memo.pop(next(iter(memo), None), None)   # (two threads may evict at once)
    memo[key] = value


def _remember_sizes(key: tuple, arrays: tuple[np.ndarray, ...]) -> None:
    for a in arrays:
        a.setflags(write=False)
    _remember(_SIZES, key, arrays)


def _bias(m: np.ndarray, t: int) -> np.ndarray:
    """The mask as the kernel reads it: f32 (a bool mask's False is -inf), contiguous rows of ``t``
    keys (a shorter mask's missing keys are -inf)."""
    if m.dtype == np.bool_:
        m = np.where(m, np.float32(0), np.float32(-np.inf))
    if m.shape[-1] < t:
        m = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, t - m.shape[-1])], constant_values=-np.inf)
    return np.ascontiguousarray(m, dtype=np.float32)


def _rows3(a: np.ndarray) -> np.ndarray:
    """A 3-D (batch, seq, heads·dim) input as the kernel reads it: contiguous last axis, any
    stride above it (a view of a wider product's columns is read in place)."""
    return a if a.strides[2] == a.itemsize and min(a.strides[:2]) >= 0 else np.ascontiguousarray(a)


def _st(a: np.ndarray) -> tuple[int, int]:
    """(batch, position) element strides of a 3-D input."""
    return a.strides[0] // a.itemsize, a.strides[1] // a.itemsize


def _rows(a: np.ndarray) -> np.ndarray:
    """``a`` as the kernel reads it: contiguous rows of its last axis, any stride above
    (``a`` itself when so — a present handed out by ``GrowingCache`` — else a contiguous copy)."""
    if a.ndim == 4 and a.strides[3] == a.itemsize and a.strides[2] == a.shape[3] * a.itemsize \
            and a.strides[1] >= a.shape[2] * a.strides[2] and a.strides[0] >= a.shape[1] * a.strides[1]:
        return a
    return np.ascontiguousarray(a)


class GrowingCache:
    """One present K or V of an attention kernel: ``past ++ new`` written in place at the end of
    the buffer the past already lives in.

    A decode loop hands each step's presents back as the next step's past. Presents are views
    ``buf[:, :, :t]`` of a buffer with room to grow along the sequence axis; when the past is the
    view this cache last handed out (same buffer, from its start, and nothing appended after it
    since), the new rows are written after it: no copy of the cache and no allocation per step
    (onnxruntime's past-present buffer sharing). Any other past — another array, a past reused for
    a second continuation — is copied into a buffer no view refers to (the last one when the
    caller has dropped every view of it, else a new one), so a view once handed out never changes.
    Buffers grow by half their length (at least 64 rows), so copies amortize to O(1) per token;
    the cache keeps its last buffer, so a step that must copy reuses mapped pages instead of
    faulting in fresh ones (a page fault per 4 KiB cost more than the copy).
    """

    GROW_MIN = 64

    def __init__(self):
        self._buf: np.ndarray | None = None
        self._filled = 0
        self.copies = 0   # times the past was copied (read by tests and benchmarks)

    def append(self, past: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(present view, the buffer it lives in) for ``past`` followed by ``new`` on axis 2."""
        p, s = past.shape[2], new.shape[2]
        t = p + s
        buf = self._buf
        fits = buf is not None and buf.shape[2] >= t and past.shape[:2] == buf.shape[:2] \
            and past.shape[3:] == buf.shape[3:]
        if not (fits and p and self._filled == p and past.strides == buf.strides
                and past.__array_interface__["data"][0] == buf.__array_interface__["data"][0]):
            # references: self._buf, ``buf`` here and getrefcount's argument — no view is alive
            if not (fits and sys.getrefcount(buf) <= 3):
                cap = t + max(self.GROW_MIN, t // 2)
                buf = self._buf = np.empty(past.shape[:2] + (cap,) + past.shape[3:], np.float32)
            buf[:, :, :p] = past
            self.copies += 1
        buf[:, :, p:t] = new
        self._filled = t
        return buf[:, :, :t], buf


class RotaryLowering(Lowering):
    """RotaryEmbedding: each (batch, position, head) row rotates its channel pairs by the angles of
    its position — one pass over X, the cos/sin rows read from their (cached) tables."""

    def __init__(self, node: Node, in_shapes, known):
        self.node = node
        if any(v is not None and v.type.dtype.name not in ("f32", "i64") for v in node.inputs):
            raise Unsupported("rotary kernels take f32")
        x, cs = in_shapes[0], in_shapes[1]
        if x is None or cs is None:
            raise Unsupported("unknown shape")
        self.has_pos = len(node.inputs) > 3 and node.inputs[3] is not None
        if len(x) == 4:
            b, h, s, d = x
            self.st = (h * s * d, s * d, d)     # strides of (b, h, s)
        else:
            h = node.attr("num_heads")
            b, s, d = x[0], x[1], x[2] // h
            self.st = (s * h * d, d, h * d)
        self.b, self.h, self.s, self.d = b, h, s, d
        self.rot = node.attr("rotary_embedding_dim") or d
        self.half = self.rot // 2
        self.interleaved = bool(node.attr("interleaved"))
        if cs[-1] != self.half or in_shapes[2] != cs:
            raise Unsupported("cos/sin caches of another width than rotary_dim / 2")
        # which cos/sin row each (batch, position) reads: the caches (no position ids) or the
        # position ids broadcast over batch and sequence like numpy does — size-1 axes read with
        # stride 0 (a [1, S, D/2] cache is shared by every batch entry)
        if self.has_pos:
            if len(cs) != 2 or in_shapes[3] is None or len(in_shapes[3]) != 2:
                raise Unsupported("position ids that are not [batch, seq] into [positions, rotary_dim/2] caches")
            self.row_st = broadcast_strides(in_shapes[3], (b, s))
            self.cache_rows = cs[0]
        else:
            if len(cs) != 3:
                raise Unsupported("cos/sin caches that are not [batch, seq, rotary_dim/2]")
            self.row_st = broadcast_strides(cs[:2], (b, s))
            self.cache_rows = None
        self.in_shapes = [tuple(v) if v is not None else None for v in in_shapes]
        self.out_shape = tuple(node.outputs[0].type.shape)
        self.cost = 6.0 * math.prod(self.out_shape) * 4

    def emit(self, module, name):
        fn, b, lo, hi, (X, COS, SIN, POS, Y) = kernel_function(module, name("main"), 5)
        S, H, D, half = self.s, self.h, self.d, self.half
        with loop(b, lo, hi, name="row") as row:   # rows ordered (b, s, h)
            hh = b.srem(row, const(I64, H))
            ss = b.srem(b.sdiv(row, const(I64, H)), const(I64, S))
            bb = b.sdiv(row, const(I64, H * S))
            base = b.add(b.add(b.mul(bb, const(I64, self.st[0])), b.mul(hh, const(I64, self.st[1]))),
                         b.mul(ss, const(I64, self.st[2])))
            bs = b.add(b.mul(bb, const(I64, self.row_st[0])), b.mul(ss, const(I64, self.row_st[1])))
            crow = load(b, POS, bs, I64) if self.has_pos else bs
            cbase = b.mul(crow, const(I64, half))
            with loop(b, 0, half, name="i") as i:
                c = load(b, COS, b.add(cbase, i), F32)
                sn = load(b, SIN, b.add(cbase, i), F32)
                if self.interleaved:
                    i1 = b.mul(i, const(I64, 2))
                    i2 = b.add(i1, const(I64, 1))
                else:
                    i1, i2 = i, b.add(i, const(I64, half))
                x1 = load(b, X, b.add(base, i1), F32)
                x2 = load(b, X, b.add(base, i2), F32)
                store(b, b.fsub(b.fmul(c, x1), b.fmul(sn, x2)), Y, b.add(base, i1))
                store(b, b.fadd(b.fmul(sn, x1), b.fmul(c, x2)), Y, b.add(base, i2))
            with loop(b, self.rot, D, name="p") as p:   # channels past the rotary dim pass through
                store(b, load(b, X, b.add(base, p), F32), Y, b.add(base, p))
        b.ret_void()

    def bind(self, fn, runner):
        kern = fn("main")
        rows, cost = self.b * self.s * self.h, self.cost
        shape = self.out_shape
        expect = [(i, s) for i, s in enumerate(self.in_shapes) if s is not None]
        name = describe_node(self.node)
        has_pos, cache_rows = self.has_pos, self.cache_rows
        dummy = np.zeros(1, np.int64)

        def check_positions(args):
            pos = args[3]
            if pos.size and (int(pos.min()) < 0 or int(pos.max()) >= cache_rows):
                raise BackendError(f"{name}: position ids span {int(pos.min())}..{int(pos.max())}, "
                                   f"the cos/sin caches have {cache_rows} rows")

        def run(args, outs):
            (out,) = outputs(outs, [shape], [np.float32])
            check_inputs(name, args, expect)
            if has_pos:
                check_positions(args)
            if out.size:
                runner.launch(kern, rows, [ptr(args[0]), ptr(args[1]), ptr(args[2]),
                                           ptr(args[3] if has_pos else dummy), ptr(out)], cost)
            return (out,)
        if has_pos:   # the position ids' values are checked against the caches at every run
            run.precheck = check_positions
        return replayable(run)
