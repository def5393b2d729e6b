"""``quantize{rotate=…}``: an orthogonal rotation in front of outlier-heavy GEMMs (QuaRot,
arXiv:2404.00456; QuIP#'s incoherence processing).

``y = x·W = (x·R)·(Rᵀ·W)`` for any orthogonal ``R``. ``R`` is a block-diagonal Hadamard with
seeded ±1 signs: an outlier channel of ``x`` is spread over its whole block, so the weight rows
it multiplies are mixed with their neighbours' and each group of ``Rᵀ·W`` quantizes with a step
set by typical, not extreme, rows. ``Rᵀ·W`` is stored quantized; ``x·R`` runs online in full
precision as standard ONNX — ``Reshape(x, [..., K/b, b]) → MatMul(b×b) → Reshape(x, [..., K])``
with one ``b×b`` constant per block size shared by every rotated GEMM. ``b`` is the largest power
of two ≤ the group (128 per channel) dividing the group, so no block straddles a group (a group
with no power-of-two factor ≥ 16 is its own block: Hadamards of decreasing powers of two). When
``b`` does not divide ``K``, the last ``K mod b`` channels get one small ``tail×tail`` block of
the same kind, joined by ``Slice``/``Concat``: the constants stay ``O(b² + tail²)`` for any ``K``,
and ``Rᵀ·W`` is folded block by block (``fold``), never as a ``K×K`` matrix.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ...ir import Builder, Graph

__all__ = ["fold", "rotate_gemms", "rotation"]

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


def _powers(n: int) -> list[int]:
    """``n`` as decreasing powers of two (the Hadamard sizes of a block that is not one)."""
    out: list[int] = []
    while n:
        out.append(1 << (n.bit_length() - 1))
        n -= out[-1]
    return out


def _block(sizes: list[int], seed: int) -> np.ndarray:
    """Hadamards of ``sizes`` (powers of two) on the diagonal of one square matrix (float64): a
    block of ``_powers(n)`` when ``n`` is no power of two, or all of ``R``."""
    r = np.zeros((sum(sizes),) * 2)
    at = 0
    for b in sizes:
        r[at:at + b, at:at + b] = _hadamard(b, seed)
        at += b
    return r


def _plan(k: int, group: int) -> tuple[int, int, int]:
    """``(b, count, tail)``: ``R`` is ``count`` copies of the ``b×b`` block, then one ``tail×tail``
    block (``K = count·b + tail``, ``tail < b``). ``b`` is the largest power of two ≤ the group
    (128 per channel, at most ``K``) dividing the group, so no block straddles a group and the
    tail lies in the last group; a group with no power-of-two factor ≥ 16 is its own block."""
    span = min(group, k) if group else k
    b = 1 << (min(span, group or _PER_CHANNEL_BLOCK).bit_length() - 1)
    if group and group < k:
        while b > 16 and group % b:
            b //= 2
        if group % b:
            b = group
    return b, k // b, k % b


def _blocks(k: int, group: int) -> list[int]:
    """The Hadamard block sizes along ``K``: none straddles a group (see ``_plan``)."""
    b, count, tail = _plan(k, group)
    return _powers(b) * count + _powers(tail)


def rotation(k: int, group: int, seed: int = 0) -> np.ndarray:
    """The orthogonal ``K×K`` matrix ``R`` that ``rotate_gemms`` applies (float64; for tests —
    ``rotate_gemms`` never builds it)."""
    return _block(_blocks(k, group), seed)


def fold(w: np.ndarray, k_axis: int, group: int, seed: int = 0) -> np.ndarray:
    """``Rᵀ·W`` (``k_axis`` 0; ``W·R`` for a transposed ``(N, K)`` weight), block by block: no
    ``K×K`` matrix, ``K·b·N`` multiply-adds (float64)."""
    w = np.asarray(w, np.float64)
    k = w.shape[k_axis]
    b, count, tail = _plan(k, group)
    m, t = _block(_powers(b), seed), _block(_powers(tail), seed)
    main = count * b
    if k_axis == 0:
        head = (m.T @ w[:main].reshape(count, b, -1)).reshape(main, -1)     # batched matmul: einsum took 14 s
        return np.concatenate([head, t.T @ w[main:]], axis=0)
    head = (w[:, :main].reshape(-1, count, b) @ m).reshape(-1, main)
    return np.concatenate([head, w[:, main:] @ t], axis=1)


def _rotate_input(graph: Graph, x, k: int, group: int, seed: int, shared: dict, before) -> object:
    """``x·R`` as ONNX ops: ``Reshape → MatMul(b×b) → Reshape`` over the first ``count·b``
    channels, one ``MatMul(tail×tail)`` over the rest, ``Slice``/``Concat`` joining them."""
    dt = x.type.dtype.np_dtype
    b, count, tail = _plan(k, group)
    ops = Builder(graph, before=before)

    def const(n: int):
        if (n, dt.str) not in shared:
            shared[n, dt.str] = ops.constant(_block(_powers(n), seed).astype(dt), f"rotate.hadamard{n}")
        return shared[n, dt.str]

    def ints(*v: int):
        return ops.constant(np.array(v, np.int64), f"{x.name}.rotate_shape")

    def part(v, n: int, m: int, names=None):     # v (last dim n·m) times blockdiag(m×m) n times
        if n == 1:
            return ops.MatMul(v, const(m), _meta=_ROTATION, _names=names)
        lead = [0] * (x.type.rank - 1)
        blocks = ops.MatMul(ops.Reshape(v, ints(*lead, n, m)), const(m), _meta=_ROTATION)
        return ops.Reshape(blocks, ints(*lead, n * m), _names=names)

    out = [f"{x.name}.rotated"]     # readable in saved files and messages (%h.rotated.inv_smooth)
    if not tail or not count:
        return part(x, count or 1, b if count else tail, out)
    main = count * b
    axes = ints(-1)                 # one, shared by both slices
    head = ops.Slice(x, ints(0), ints(main), axes)
    rest = ops.Slice(x, ints(main), ints(k), axes)
    return ops.Concat(part(head, count, b), part(rest, 1, tail), axis=-1, _names=out)


def rotate_gemms(graph: Graph, cands: Sequence, group: int, seed: int = 0) -> int:
    """Rotate the inputs of ``cands`` (quantize candidates with weight data) and fold ``Rᵀ`` into
    their weights, in place; candidates sharing an input share its rotation. Returns how many."""
    shared: dict[tuple, object] = {}          # (block size, dtype) -> the rotation constant
    by_x: dict[int, list] = {}
    for c in cands:
        if c.w.data is not None:
            by_x.setdefault(id(c.x), []).append(c)
    order = {id(n): i for i, n in enumerate(graph)}
    for members in by_x.values():
        x, k = members[0].x, members[0].k
        first = min(members, key=lambda c: order[id(c.node)]).node
        out = _rotate_input(graph, x, k, group, seed, shared, first)
        for c in members:
            c.node.set_input(c.x_index, out)
            new = graph.add_constant(f"{c.w.name}.rotated",
                                     fold(c.w.data, c.k_axis, group, seed).astype(c.w.type.dtype.np_dtype))
            old, c.w = c.w, new
            c.node.set_input(c.node.inputs.index(old), new)
            if not old.uses:
                graph.remove_constant(old)
    return sum(len(m) for m in by_x.values())
