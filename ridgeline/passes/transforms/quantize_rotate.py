"""``quantize{rotate=…}``: an orthogonal rotation in front of outlier-heavy GEMMs (QuaRot,
arXiv:2404.00456; QuIP#'s incoherence processing).

``y = x·W = (x·R)·(Rᵀ·W)`` for any orthogonal ``R``. ``R`` is a block-diagonal Hadamard with
seeded ±1 signs: an outlier channel of ``x`` is spread over its whole block, so the weight rows
it multiplies are mixed with their neighbours' and each group of ``Rᵀ·W`` quantizes with a step
set by typical, not extreme, rows. ``Rᵀ·W`` is stored quantized; ``x·R`` runs online in full
precision as standard ONNX — ``Reshape(x, [..., K/b, b]) → MatMul(b×b) → Reshape(x, [..., K])``
with one ``b×b`` constant per block size shared by every rotated GEMM. ``b`` is the largest power
of two ≤ the group (128 per channel) dividing both ``K`` and the group, so no block straddles a
group; when that is below 16, ``R`` is one ``K×K`` block-diagonal ``MatMul`` splitting each group
into Hadamards of decreasing powers of two (of size 1: the identity).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...ir import Graph

__all__ = ["rotate_gemms", "rotation"]

#: block of the per-channel (group 0) schemes: QuaRot rotates whole rows, but 128 keeps x·R cheap
_PER_CHANNEL_BLOCK = 128
#: marks the rotation's MatMul: a later quantize pass keeps it in full precision
_ROTATION = {"quantize": "rotation"}


def _hadamard(n: int, seed: int) -> np.ndarray:
    """An orthonormal ``n×n`` Hadamard (Sylvester; ``n`` a power of two) with seeded row signs."""
    h = np.ones((1, 1))
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    signs = np.random.default_rng([seed, n]).choice((-1.0, 1.0), n)
    return signs[:, None] * h / np.sqrt(n)


def _blocks(k: int, group: int) -> list[int]:
    """The Hadamard block sizes along ``K``: none straddles a group (see the module docstring)."""
    span = min(group, k) if group else k
    b = 1 << (min(span, group or _PER_CHANNEL_BLOCK).bit_length() - 1)
    while b > 16 and (k % b or span % b):
        b //= 2
    if k % b == 0 and span % b == 0:
        return [b] * (k // b)
    out: list[int] = []
    for at in range(0, k, span):     # each group (the last one shorter): powers of two
        rest = min(span, k - at)
        while rest:
            out.append(1 << (rest.bit_length() - 1))
            rest -= out[-1]
    return out


def rotation(k: int, group: int, seed: int = 0) -> np.ndarray:
    """The orthogonal ``K×K`` matrix ``R`` that ``rotate_gemms`` applies (float64)."""
    r = np.zeros((k, k))
    at = 0
    for b in _blocks(k, group):
        r[at:at + b, at:at + b] = _hadamard(b, seed)
        at += b
    return r


def rotate_gemms(graph: Graph, cands: Sequence, group: int, seed: int = 0) -> int:
    """Rotate the inputs of ``cands`` (quantize candidates with weight data) and fold ``Rᵀ`` into
    their weights, in place; candidates sharing an input share its rotation. Returns how many."""
    shared: dict[tuple, object] = {}          # (block | K, dtype) -> the rotation constant
    by_x: dict[int, list] = {}
    for c in cands:
        if c.w.data is not None:
            by_x.setdefault(id(c.x), []).append(c)
    for members in by_x.values():
        x, k = members[0].x, members[0].k
        dt = x.type.dtype.np_dtype
        blocks = _blocks(k, group)
        uniform = len(set(blocks)) == 1
        key = (blocks[0] if uniform else k, uniform, dt.str)
        if key not in shared:
            mat = _hadamard(blocks[0], seed) if uniform else rotation(k, group, seed)
            shared[key] = graph.add_constant(graph.fresh_name(f"rotate.hadamard{mat.shape[0]}"), mat.astype(dt))
        first = min(members, key=lambda c: list(graph).index(c.node)).node
        if uniform and len(blocks) > 1:
            lead = [0] * (x.type.rank - 1)
            split = graph.add_constant(graph.fresh_name(f"{x.name}.blocks"),
                                       np.array(lead + [len(blocks), blocks[0]], np.int64))
            back = graph.add_constant(graph.fresh_name(f"{x.name}.unblocks"), np.array(lead + [k], np.int64))
            xb = graph.add_node("Reshape", [x, split], names=[f"{x.name}.blocked"], before=first).outputs[0]
            xr = graph.add_node("MatMul", [xb, shared[key]], names=[f"{x.name}.rotated_blocks"], before=first,
                                meta=_ROTATION)
            out = graph.add_node("Reshape", [xr.outputs[0], back], names=[f"{x.name}.rotated"], before=first)
        else:
            out = graph.add_node("MatMul", [x, shared[key]], names=[f"{x.name}.rotated"], before=first, meta=_ROTATION)
        r = rotation(k, group, seed)
        for c in members:
            c.node.set_input(c.x_index, out.outputs[0])
            w = np.asarray(c.w.data, np.float64)
            new = graph.add_constant(graph.fresh_name(f"{c.w.name}.rotated"),
                                     (r.T @ w if c.k_axis == 0 else w @ r).astype(c.w.type.dtype.np_dtype))
            old, c.w = c.w, new
            c.node.set_input(c.node.inputs.index(old), new)
            if not old.uses:
                graph.remove_constant(old)
    return sum(len(m) for m in by_x.values())
