"""Tile schedules: a target's memory hierarchy, the traffic a loop nest moves, and the search.

**The hierarchy** (``hierarchy(target, level)``) is the target's memory levels from device memory
inward to the *tile level*, where tiles live (default: the innermost level: shared memory on a GPU,
VMEM/SBUF on a systolic chip, L1 on the host CPU). A target with a single level (Groq's SRAM, the
wafer's SRAM) keeps its tiles in that level; a matrix unit with a ``shape`` then bounds the
stationary K×N block (weights installed in a 320×320 MXM), and traffic is what the units read.

**Traffic.** ``loads`` are the bytes that enter a level. At the tile level they follow from the
loop order: an operand tile is loaded again on every iteration of the loops that do not index it
and sit outside the innermost loop that does (for GEMM A[m,k], B[k,n], C[m,n]; with K outside the
innermost of M, N the partial sums go out and back, in f32). The levels between device memory and
the tile level are caches shared by the tiles: a group of Gm×Gn tiles reuses its operands there
when their panels fit whole, or when the tiles run at once (no more than the tile level's
instances sharing the cache, e.g. the SMs under one L2) and their K-window fits; A is then read
once per column of groups and B once per row. Tiles of a cluster share operand loads
(``array.cluster_multicast``: TMA multicast). FlashAttention keeps a query block and streams
key/value blocks past it (online softmax), so traffic into the tile level is
``Q + O + (K+V)·(query blocks)`` = O(N²·d²/M), and key blocks that the causal frontier or the
sliding window hides from a whole query block are skipped (their FLOPs too); a level between that
holds a head's K/V reads it from device memory once. Rows (norms, softmax, reductions) are one
pass when a row block holds whole rows, else two (statistics, then output). Element-wise tiles
move the compulsory bytes. A GPU keeps accumulators (GEMM C, attention's running output and
scores) in registers, bounded like the tile level; other machines keep them in the tile level.

The bytes recorded per level (``node.meta["tile"]["traffic"]``, docs/cost_models.md) are what
the level serves: device memory its loads out, a middle level what enters plus what leaves, the
tile level what enters plus what the units read back (each byte once: register-level reuse is not
modelled).

**Search.** Every candidate (tile sizes: the matrix unit's granule times powers of two; six loop
orders; single or double buffering) is priced at once with numpy: its footprint must fit the tile
level (per instance), its time is ``max(compute, traffic/bandwidth per level)`` when
double-buffered (loads overlap compute) and their sum when not, where compute and bandwidth are
scaled by the share of the tile level's instances the tiles keep busy. Among the schedules within
2% of the fastest (``TIME_RESOLUTION``: the model resolves no finer), the one with the least
bandwidth-weighted traffic wins, then the one with fewer loop steps. Results are cached per
(problem, hierarchy), so a 126-layer model searches each distinct shape once.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...cost_models import Target
from ...cost_models.capabilities import capabilities
from ...ir.errors import TargetError
from .tile_problems import AttentionProblem, ElementwiseProblem, GemmProblem, Problem, RowsProblem

__all__ = [
    "GEMM_ORDERS",
    "Candidates",
    "Hierarchy",
    "Level",
    "evaluate_attention",
    "evaluate_gemm",
    "hierarchy",
    "search",
]

GEMM_ORDERS = tuple(itertools.permutations(("m", "n", "k")))
_BUFFERS = (1, 2)
_MAX_TILE = 1 << 14


@dataclass(frozen=True)
class Level:
    """One memory level as tiling sees it: capacity per instance, aggregate bandwidth."""

    name: str
    capacity: float
    bandwidth: float
    instances: int


@dataclass(frozen=True)
class Hierarchy:
    """Device memory first, the tile level last; the matrix unit's granules; peak rates."""

    target: str
    levels: tuple[Level, ...]
    granule: tuple[int, int, int]             # m, n, k
    stationary: tuple[int, int] | None        # (k, n) bound of a tile held by the units themselves
    peaks: tuple[tuple[str, float], ...]      # dtype -> best FLOP/s (matrix units first)
    vector_peaks: tuple[tuple[str, float], ...]
    acc_in_registers: bool = False            # accumulators (GEMM C, attention S and O) off the tile level
    multicast: int = 1                        # tiles of a cluster sharing one operand load

    @property
    def tile(self) -> Level:
        return self.levels[-1]

    @property
    def on_chip(self) -> bool:
        """Whether tiles live in a level of their own (not in device memory)."""
        return len(self.levels) > 1

    def peak(self, dt: str) -> float:
        d = dict(self.peaks)
        return d.get(dt) or d.get("f32") or max(d.values(), default=1.0) or 1.0

    def vector_peak(self, dt: str) -> float:
        d = dict(self.vector_peaks)
        return d.get(dt) or d.get("f32") or max(d.values(), default=1.0) or 1.0


def hierarchy(target: Target, level: str | None = None) -> Hierarchy:
    """The levels ``tile`` schedules for on ``target``; ``level`` names the tile level (a level the
    target lacks is a ``TargetError`` listing the ones it has)."""
    mem = list(target.memory)
    if level:
        names = [m.name for m in mem]
        if level not in names:
            raise TargetError(f"target {target.name} has no memory level {level!r} for tiles "
                              f"(levels: {', '.join(names)})")
        mem = mem[:names.index(level) + 1]
    levels = tuple(Level(m.name, float(m.capacity), float(m.bandwidth), max(1, int(m.count))) for m in mem)
    caps = capabilities(target)
    shape = caps.matrix_shape
    gk, gn = (shape[0], shape[1]) if len(shape) >= 2 else (16, 16)
    stationary = (gk, gn) if len(levels) == 1 and shape else None
    dtypes = set(caps.dtypes) | {"f32"}
    peaks = tuple(sorted((dt, target.peak(dt)) for dt in dtypes if target.peak(dt) > 0))
    vec = tuple(sorted((dt, target.peak(dt, ("vector", "scalar"))) for dt in dtypes
                       if target.peak(dt, ("vector", "scalar")) > 0))
    # A GPU keeps accumulator tiles in its register file (256 KiB per SM on A100/H100/B200, about
    # as large as shared memory: taken as the tile level's capacity, an assumption), not in shared
    # memory; other machines hold them in the tile level (a TPU's VMEM, a CPU's L1).
    return Hierarchy(target.name, levels, (caps.row_granule, gn, gk), stationary, peaks, vec,
                     caps.accumulators_in_registers, caps.multicast)


# --------------------------------------------------------------------------- helpers
def _candidates(extent: int, granule: int, cap: int = _MAX_TILE) -> np.ndarray:
    """granule·2^j up to the first one covering ``extent``; ``extent`` itself when smaller."""
    g = max(1, granule)
    if extent <= g:
        return np.array([extent], dtype=np.int64)
    out = []
    c = g
    while c < extent and c <= cap:
        out.append(c)
        c *= 2
    if c <= cap:
        out.append(min(c, _round_up(extent, g)))
    return np.array(sorted(set(out)), dtype=np.int64)


def _round_up(x: int, g: int) -> int:
    return -(-x // g) * g


def _cdiv(a, b):
    return -(-a // b)


def _level_times(h: Hierarchy, traffic: list, util) -> list:
    return [t / (lvl.bandwidth * util) for lvl, t in zip(h.levels, traffic)]


#: modelled times within this share of the fastest count as equal: the model does not resolve
#: finer, and among such schedules the one moving fewer bytes is the robust choice
TIME_RESOLUTION = 0.02


@dataclass(frozen=True)
class Candidates:
    """Tile schedules priced at once: entry i of every array is candidate i."""

    traffic: list               # bytes each level serves (one array per level, device memory first)
    footprint: np.ndarray       # bytes per instance of the tile level
    steps: np.ndarray           # loop steps (the last tie-break)
    time: np.ndarray            # seconds
    weighted: np.ndarray        # bandwidth-weighted traffic: seconds of traffic summed over levels
    feasible: np.ndarray        # fits the tile level (and the units' stationary block)
    groups: list = field(default_factory=list)    # gemm: the (m, n) tile groups per middle level
    flops: np.ndarray | None = None               # attention: the FLOPs executed (skipped blocks not)

    def best(self) -> int | None:
        """The index of the schedule to take (``_best``)."""
        return _best(self.time, self.weighted, self.steps, self.feasible)


def _priced(h: Hierarchy, tile_loads, middle: list, into_tile, *, footprint, feasible, util, compute,
            buffers, steps, **extra: Any) -> Candidates:
    """Candidates whose loads are ``tile_loads`` (what the units read from the tile level),
    ``middle`` (into each middle level) and ``into_tile``, timed as ``max(compute, memory)`` when
    double-buffered and their sum when not."""
    loads = [tile_loads] + middle + [into_tile] if h.on_chip else [tile_loads]
    traffic = _traffic_per_level(h, loads)
    times = _level_times(h, traffic, util)
    mem = np.max(np.stack(times), axis=0)
    time = np.where(buffers >= 2, np.maximum(compute, mem), compute + mem)
    weighted = np.sum(np.stack([t * util for t in times]), axis=0)
    return Candidates(traffic, footprint, steps, time, weighted, feasible, **extra)


def _best_of(cands: list[Candidates]) -> tuple[int, int] | None:
    """(which candidate set, index in it) of the schedule to take among several sets of one size."""
    j = _best(*(np.concatenate([getattr(c, key) for c in cands]) for key in ("time", "weighted", "steps", "feasible")))
    return None if j is None else divmod(j, cands[0].time.size)


def _record(kernel: str, h: Hierarchy, c: Candidates, i: int, head: dict[str, Any],
            tail: dict[str, Any] | None = None) -> dict[str, Any]:
    """Candidate ``i`` as a ``node.meta["tile"]`` record: ``head``, its traffic, ``tail``, its footprint."""
    rec: dict[str, Any] = {"kernel": kernel, "level": h.tile.name, **head,
                           "traffic": {lvl.name: float(t[i]) for lvl, t in zip(h.levels, c.traffic)}, **(tail or {})}
    if h.on_chip:
        rec["footprint"] = {h.tile.name: float(c.footprint[i])}
    return rec


def _best(time, weighted, steps, feasible) -> int | None:
    """The index of the schedule to take: the least bandwidth-weighted traffic (then the fewest
    loop steps) among the feasible ones within ``TIME_RESOLUTION`` of the fastest."""
    idx = np.flatnonzero(feasible)
    if idx.size == 0:
        return None
    t = time[idx]
    idx = idx[t <= t.min() * (1 + TIME_RESOLUTION)]
    w = weighted[idx]
    order = np.lexsort((steps[idx], np.round(w / max(w.min(), 1e-300), 9)))
    return int(idx[order[0]])


def _traffic_per_level(h: Hierarchy, loads: list) -> list:
    """Bytes each level serves from the loads into each level (``loads[i]``: into level i ≥ 1,
    ``loads[0]``: read by the units from the tile level)."""
    n = len(h.levels)
    if n == 1:
        return [loads[0]]
    out = []
    for i in range(n):
        if i == 0:
            out.append(loads[1])
        elif i < n - 1:
            out.append(loads[i] + loads[i + 1])
        else:
            out.append(loads[i] + loads[0])
    return out


# --------------------------------------------------------------------------- GEMM
def _acc_bytes(dt: str) -> float:
    return 8.0 if dt == "f64" else 4.0


def _gemm_middle(p: GemmProblem, h: Hierarchy, tm, tn, tk, buffers) -> tuple[list, list]:
    """Loads into each level between device memory and the tile level, and the tile groups that
    achieve them (independent of the loop order at the tile level)."""
    size_a = p.batch * p.m * p.k * p.a_bytes
    size_b = p.batch * p.k * p.n * p.b_bytes
    size_c = p.batch * p.m * p.n * p.c_bytes
    loads, groups = [], []
    for lvl in h.levels[1:-1]:
        best = np.full_like(tm, np.inf)
        best_g = (np.ones_like(tm), np.ones_like(tm))
        # tiles running at once (one per instance of the tile level sharing this level) move
        # through K together: their operands are shared while the K-window fits; panels that
        # fit whole are shared by tiles that run later, too
        concurrent = max(1, h.tile.instances // lvl.instances)
        for gm, gn in itertools.product((1, 2, 4, 8, 16, 32, 64), repeat=2):
            rows = gm * tm * p.a_bytes + gn * tn * p.b_bytes
            ok = (rows * p.k <= lvl.capacity) | ((gm * gn <= concurrent) & (rows * tk * buffers <= lvl.capacity))
            cand = size_a * _cdiv(p.n, gn * tn) + size_b * _cdiv(p.m, gm * tm) + size_c
            better = ok & (cand < best)
            best = np.where(better, cand, best)
            best_g = (np.where(better, gm, best_g[0]), np.where(better, gn, best_g[1]))
        loads.append(best)
        groups.append(best_g)
    return loads, groups


def evaluate_gemm(p: GemmProblem, h: Hierarchy, tm, tn, tk, order: tuple[str, str, str], buffers,
                  middle: tuple[list, list] | None = None) -> Candidates:
    """Traffic per level, footprint, tile count and time of GEMM tiles (scalars or equal-shape
    arrays ``tm``, ``tn``, ``tk``, ``buffers``) in loop ``order`` (outermost first)."""
    tm, tn, tk, buffers = (np.asarray(x, dtype=np.float64) for x in (tm, tn, tk, buffers))
    trips = {"m": _cdiv(p.m, tm), "n": _cdiv(p.n, tn), "k": _cdiv(p.k, tk)}
    size_a = p.batch * p.m * p.k * p.a_bytes
    size_b = p.batch * p.k * p.n * p.b_bytes
    size_c = p.batch * p.m * p.n * p.c_bytes
    acc = p.batch * p.m * p.n * _acc_bytes(p.dtype)

    def reloads(relevant: set[str]):
        inner = max(i for i, d in enumerate(order) if d in relevant)
        f = np.ones_like(tm)
        for d in order[:inner]:
            if d not in relevant:
                f = f * trips[d]
        return f

    la = size_a * reloads({"m", "k"})
    lb = size_b * reloads({"k", "n"})
    revisits = reloads({"m", "n"})          # > 1 when K loops sit outside the output tile's loops
    lc = size_c + 2.0 * acc * (revisits - 1.0)
    tile_loads = la + lb + lc
    footprint = buffers * (tm * tk * p.a_bytes + tk * tn * p.b_bytes)
    acc_tile = tm * tn * _acc_bytes(p.dtype)
    if not h.acc_in_registers:
        footprint = footprint + acc_tile
    tiles = p.batch * trips["m"] * trips["n"]
    steps = tiles * trips["k"]
    mid_loads, groups = middle if middle is not None else _gemm_middle(p, h, tm, tn, tk, buffers)
    mid_loads = [np.minimum(x, tile_loads) for x in mid_loads]
    # loads[0]: what the units read back from the tile level; loads[i >= 1]: what enters level i.
    # Tiles of a cluster share operand loads from the level above (TMA multicast).
    into_tile = (la + lb) / h.multicast + lc
    if h.on_chip:
        feasible = (footprint <= h.tile.capacity) & (acc_tile <= h.tile.capacity)
    else:
        feasible = np.ones_like(tm, dtype=bool)
        if h.stationary is not None:
            feasible = (tk <= h.stationary[0]) & (tn <= h.stationary[1])
    util = np.minimum(1.0, tiles / h.tile.instances)
    return _priced(h, tile_loads, mid_loads, into_tile, footprint=footprint, feasible=feasible, util=util,
                   compute=p.flops / (h.peak(p.dtype) * util), buffers=buffers, steps=steps, groups=groups)


def _search_gemm(p: GemmProblem, h: Hierarchy, buffers: tuple[int, ...]) -> dict[str, Any] | None:
    gm, gn, gk = h.granule
    gk = math.lcm(gk, p.k_align) if p.k_align > 1 else gk
    cm, cn, ck = _candidates(p.m, gm), _candidates(p.n, gn), _candidates(p.k, gk)
    grid = np.array(list(itertools.product(cm, cn, ck, buffers)), dtype=np.float64)
    tm, tn, tk, bufs = grid.T
    middle = _gemm_middle(p, h, tm, tn, tk, bufs)
    evs = [evaluate_gemm(p, h, tm, tn, tk, order, bufs, middle) for order in GEMM_ORDERS]
    best = _best_of(evs)
    if best is None:
        return None
    (o, i), ev = best, evs[best[0]]
    rec = _record("gemm", h, ev, i, {"shape": {"m": int(tm[i]), "n": int(tn[i]), "k": int(tk[i])},
                                     "order": list(GEMM_ORDERS[o]), "buffers": int(bufs[i])})
    if ev.groups:
        rec["groups"] = {lvl.name: {"m": int(g[0][i]), "n": int(g[1][i])}
                         for lvl, g in zip(h.levels[1:-1], ev.groups)}
    return rec


# --------------------------------------------------------------------------- attention
def _kv_coverage(p: AttentionProblem, bq: int, bkv: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Keys read, (row, key) pairs computed and key blocks visited per (batch, KV head), for each
    ``bkv``, when query
    blocks of ``bq`` packed rows (position-major: row r is position r // group) skip the key blocks
    that the causal frontier or the sliding window hides from all their rows."""
    g, t, past = p.group, p.total, p.past
    rows_total = p.sq * g
    nq = _cdiv(rows_total, bq)
    r0 = np.arange(nq) * bq
    r1 = np.minimum(rows_total, r0 + bq)
    p_lo, p_hi = r0 // g, (r1 - 1) // g
    hi = np.full(nq, t - 1)
    if p.causal:
        hi = np.minimum(hi, past + p_hi)
    if p.right >= 0:
        hi = np.minimum(hi, past + p_hi + p.right)
    lo = np.zeros(nq, dtype=np.int64)
    if p.left >= 0:
        lo = np.maximum(0, past + p_lo - p.left)
    bkv = np.asarray(bkv, dtype=np.int64)[:, None]
    first = lo[None, :] // bkv
    last = hi[None, :] // bkv
    covered = np.where(hi[None, :] >= lo[None, :], np.minimum(t, (last + 1) * bkv) - first * bkv, 0)
    keys = covered.sum(axis=1)
    pairs = (covered * (r1 - r0)[None, :]).sum(axis=1)
    blocks = np.where(hi[None, :] >= lo[None, :], last - first + 1, 0).sum(axis=1)
    return keys.astype(np.float64), pairs.astype(np.float64), blocks.astype(np.float64), nq


def evaluate_attention(p: AttentionProblem, h: Hierarchy, bq: int, bkv, buffers) -> Candidates:
    """Traffic per level, footprint, executed FLOPs and time of FlashAttention blocks ``bq`` (packed
    query rows) × ``bkv`` (keys); ``bkv`` and ``buffers`` may be equal-shape arrays."""
    bkv = np.atleast_1d(np.asarray(bkv, dtype=np.float64))
    buffers = np.broadcast_to(np.asarray(buffers, dtype=np.float64), bkv.shape)
    heads = p.batch * p.kv_heads
    keys, pairs, blocks, nq = _kv_coverage(p, bq, bkv.astype(np.int64))
    kv_row = (p.d + p.dv) * p.kv_bytes
    q_total = p.batch * p.q_heads * p.sq * p.d * p.q_bytes
    o_total = p.batch * p.q_heads * p.sq * p.dv * p.o_bytes
    new_rows = p.batch * p.kv_heads * p.skv * kv_row if p.writes_cache else 0.0
    fixed = q_total + o_total + new_rows + p.mask_bytes
    kv_loads = heads * keys * kv_row
    tile_loads = fixed + kv_loads
    flops = heads * pairs * (2.0 * p.d + 2.0 * p.dv + 5.0)
    footprint = bq * p.d * p.q_bytes + buffers * bkv * (p.d + p.dv) * p.kv_bytes
    acc = bq * p.dv * 4.0 + bq * 8.0 + bq * bkv * 4.0     # running output, max and sum; score block
    if not h.acc_in_registers:
        footprint = footprint + acc
    tiles = heads * nq
    head_kv = p.total * kv_row
    kv_once = heads * head_kv
    middle = []
    for lvl in h.levels[1:-1]:
        if head_kv + bq * (p.d + p.dv) * 4.0 <= lvl.capacity:
            middle.append(np.minimum(tile_loads, fixed + kv_once))     # a head's K/V stays resident
        else:
            share = max(1, min(nq, h.tile.instances // max(1, lvl.instances)))
            middle.append(np.minimum(tile_loads, fixed + np.maximum(kv_once, kv_loads / share)))
    feasible = ((footprint <= h.tile.capacity) & (acc <= h.tile.capacity)) if h.on_chip else \
        np.ones_like(bkv, dtype=bool)
    util = min(1.0, tiles / h.tile.instances)
    return _priced(h, tile_loads, middle, tile_loads, footprint=footprint, feasible=feasible, util=util,
                   compute=flops / (h.peak(p.dtype) * util), buffers=buffers, steps=heads * blocks,
                   flops=flops)


def _search_attention(p: AttentionProblem, h: Hierarchy, buffers: tuple[int, ...]) -> dict[str, Any] | None:
    if p.scores_out:
        return None
    rows = p.sq * p.group
    cq = _candidates(rows, 16, 8192)
    ckv = _candidates(p.total, 16, 1024)
    grid = np.array(list(itertools.product(ckv, buffers)), dtype=np.float64)
    bkvs, bufss = grid.T
    evs = [evaluate_attention(p, h, int(bq), bkvs, bufss) for bq in cq]
    best = _best_of(evs)
    if best is None:
        return None
    (q, i), ev = best, evs[best[0]]
    return _record("attention", h, ev, i, {"shape": {"q": int(cq[q]), "kv": int(bkvs[i])}, "pack": p.group,
                                           "order": ["batch", "kv_head", "q", "kv"], "buffers": int(bufss[i])},
                   {"flops": float(ev.flops[i])})


# --------------------------------------------------------------------------- rows
def _search_rows(p: RowsProblem, h: Hierarchy, buffers: tuple[int, ...]) -> dict[str, Any] | None:
    cr = _candidates(p.rows, 1, 4096)
    cc = [p.cols]
    if p.splittable:
        cc += [c for c in _candidates(p.cols, 16, 1 << 16).tolist() if c < p.cols]
    grid = np.array(list(itertools.product(cr, cc, buffers)), dtype=np.float64)
    r, c, bufs = grid.T
    passes = np.where(c >= p.cols, 1.0, 2.0)
    nrb = _cdiv(p.rows, r)
    total_in = p.rows * p.cols * p.in_bytes
    total_out = p.rows * p.cols * p.out_bytes + p.rows * p.row_bytes
    tile_loads = total_in * passes + total_out + p.shared_bytes * nrb
    footprint = (bufs * r * c * (p.in_bytes + p.out_bytes) + p.shared_bytes * c / p.cols
                 + r * (p.row_bytes + 16.0))
    middle = []
    for lvl in h.levels[1:-1]:
        resident_rows = r * p.cols * p.in_bytes <= lvl.capacity       # the second pass hits this level
        shared = np.where(p.shared_bytes <= lvl.capacity, p.shared_bytes, p.shared_bytes * nrb)
        middle.append(np.where(resident_rows, total_in, total_in * passes) + total_out + shared)
    util = np.minimum(1.0, nrb / h.tile.instances)
    ev = _priced(h, tile_loads, middle, tile_loads, footprint=footprint,
                 feasible=footprint <= h.tile.capacity if h.on_chip else np.ones_like(r, dtype=bool), util=util,
                 compute=p.flops * passes / (h.vector_peak(p.dtype) * util), buffers=bufs,
                 steps=nrb * _cdiv(p.cols, c) * passes)
    i = ev.best()
    if i is None:
        return None
    return _record("rows", h, ev, i, {"shape": {"rows": int(r[i]), "cols": int(c[i])}, "passes": int(passes[i]),
                                      "order": ["rows", "cols"], "buffers": int(bufs[i])})


# --------------------------------------------------------------------------- element-wise
def _search_elementwise(p: ElementwiseProblem, h: Hierarchy, buffers: tuple[int, ...]) -> dict[str, Any] | None:
    cr = _candidates(p.rows, 1, 1 << 16)
    cc = _candidates(p.cols, 16, 1 << 16)
    grid = np.array(list(itertools.product(cr, cc, buffers)), dtype=np.float64)
    r, c, bufs = grid.T
    nrb, ncb = _cdiv(p.rows, r), _cdiv(p.cols, c)
    compulsory = p.rows * p.cols * p.full_bytes
    tile_loads = compulsory + p.row_shared * nrb + p.col_shared * ncb
    footprint = (bufs * r * c * p.full_bytes + p.row_shared * np.minimum(c, p.cols) / p.cols
                 + p.col_shared * np.minimum(r, p.rows) / p.rows)
    middle = []
    for lvl in h.levels[1:-1]:
        shared = p.row_shared + p.col_shared
        middle.append(np.where(shared <= lvl.capacity, compulsory + shared, tile_loads))
    tiles = nrb * ncb
    util = np.minimum(1.0, tiles / h.tile.instances)
    ev = _priced(h, tile_loads, middle, tile_loads, footprint=footprint,
                 feasible=footprint <= h.tile.capacity if h.on_chip else np.ones_like(r, dtype=bool), util=util,
                 compute=p.flops / (h.vector_peak(p.dtype) * util), buffers=bufs, steps=tiles)
    i = ev.best()
    if i is None:
        return None
    return _record("elementwise", h, ev, i, {"shape": {"rows": int(r[i]), "cols": int(c[i])},
                                             "order": ["rows", "cols"], "buffers": int(bufs[i])})


# --------------------------------------------------------------------------- entry point
@functools.lru_cache(maxsize=4096)
def _search_cached(p: Problem, h: Hierarchy, buffers: tuple[int, ...]) -> dict[str, Any] | None:
    if isinstance(p, GemmProblem):
        return _search_gemm(p, h, buffers)
    if isinstance(p, AttentionProblem):
        return _search_attention(p, h, buffers)
    if isinstance(p, RowsProblem):
        return _search_rows(p, h, buffers)
    if isinstance(p, ElementwiseProblem):
        return _search_elementwise(p, h, buffers)
    raise TypeError(f"unknown tiling problem {type(p).__name__}")


def search(p: Problem, h: Hierarchy, *, buffers: int = 0) -> dict[str, Any] | None:
    """The best schedule of ``p`` on ``h`` as a ``node.meta["tile"]`` record (a fresh dict), or
    None when no tile fits. ``buffers`` fixes the buffering (0: search single and double)."""
    rec = _search_cached(p, h, (buffers,) if buffers else _BUFFERS)
    if rec is None:
        return None
    return {"target": h.target, **_copy(rec)}


def _copy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    return x
