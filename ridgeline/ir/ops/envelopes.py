"""Error envelopes: the magnitude each output element was computed from, declared per op spec.

A correctly rounded kernel's error at an element is a few ulps of the terms it combined, not of the
result: ``a − b`` that cancels still rounded ``a`` and ``b``, and a dot product's error is bounded
by ``Σ|a_i||b_i|``. ``ridgeline.testing``'s error oracle allows a rewrite a few ulps of this
*envelope* per element, so each op declares how its envelope follows from its inputs' ones, as it
declares its FLOPs (``op(..., envelope=...)``). Ops that declare nothing get their category's rule
(:func:`default_rule`); the fallback is the element's own magnitude, the tightest allowance.

A rule is a callable ``rule(ctx) -> array | None`` (None: no opinion, use the element's own
magnitude). Rules only read arrays, so they live here with the specs; the oracle supplies the
context, including ``ctx.run`` to apply the op's own kernel to other arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..graph import Node

__all__ = ["EnvelopeContext", "Rule", "convex_in", "default_rule", "dot", "elementwise", "gemm",
           "generator", "linear_in", "multilinear", "normalized", "own", "product_of_inputs"]


@dataclass
class EnvelopeContext:
    """What a rule sees of one executed node: its float arguments' values and envelopes."""

    node: Node
    #: the node's arguments as the oracle ran them (None for an absent optional input)
    args: Sequence[np.ndarray | None]
    #: ``|output|`` in float64 (inf beyond float64's range)
    own: np.ndarray
    #: ``envelope(i)``: input i's envelope (its ``|value|`` when nothing was recorded)
    envelope: Callable[[int], np.ndarray]
    #: ``run(args)``: the node's kernel on other arguments (its first output, float64)
    run: Callable[[Sequence[Any]], np.ndarray]

    def is_float(self, i: int) -> bool:
        a = self.args[i] if i < len(self.args) else None
        return a is not None and np.asarray(a).dtype.kind == "f"

    def floats(self) -> list[int]:
        return [i for i in range(len(self.args)) if self.is_float(i)]


Rule = Callable[[EnvelopeContext], "np.ndarray | None"]


def _at_least_own(ctx: EnvelopeContext, env: np.ndarray) -> np.ndarray | None:
    env = np.asarray(env, dtype=np.float64)
    if env.shape != ctx.own.shape:
        return None
    return np.where(np.isfinite(env), np.maximum(env, ctx.own), ctx.own)


def elementwise(ctx: EnvelopeContext) -> np.ndarray | None:
    """The largest of the operands' envelopes, element by element (broadcast)."""
    ins = [ctx.envelope(i) for i in ctx.floats()]
    if not ins:
        return None
    env = ctx.own
    for e in ins:
        env = np.maximum(env, e)
    return _at_least_own(ctx, env)


def linear_in(i: int = 0) -> Rule:
    """An op linear in input ``i`` with non-negative weights (moves, sums, means): the op applied
    to that input's envelope bounds the magnitude of the terms each element combined."""
    def rule(ctx: EnvelopeContext) -> np.ndarray | None:
        if not ctx.is_float(i):
            return None
        args = list(ctx.args)
        args[i] = ctx.envelope(i)
        return _at_least_own(ctx, ctx.run(args))
    rule.__name__ = f"linear_in({i})"
    return rule


def dot(a: int = 0, b: int = 1) -> Rule:
    """A matrix product: ``|A|·|B|``, the dot products' error bound."""
    def rule(ctx: EnvelopeContext) -> np.ndarray | None:
        if not (ctx.is_float(a) and ctx.is_float(b)):
            return None
        return _at_least_own(ctx, np.matmul(ctx.envelope(a), ctx.envelope(b)))
    rule.__name__ = "dot"
    return rule


def multilinear(ctx: EnvelopeContext) -> np.ndarray | None:
    """A sum of products of the float inputs with no other coefficients (Conv, ConvTranspose,
    Einsum): the op applied to every float input's envelope bounds the terms."""
    ins = ctx.floats()
    if not ins:
        return None
    args = list(ctx.args)
    for i in ins:
        args[i] = ctx.envelope(i)
    return _at_least_own(ctx, ctx.run(args))


def gemm(ctx: EnvelopeContext) -> np.ndarray | None:
    """``alpha·op(A)·op(B) + beta·C``: ``|alpha|·|A|·|B| + |beta|·|C|``."""
    if not (ctx.is_float(0) and ctx.is_float(1)):
        return None
    a, b = ctx.envelope(0), ctx.envelope(1)
    node = ctx.node
    a = a.T if node.attr("transA") else a
    b = b.T if node.attr("transB") else b
    env = abs(node.attr("alpha")) * np.matmul(a, b)
    if ctx.is_float(2):
        env = env + abs(node.attr("beta")) * ctx.envelope(2)
    return _at_least_own(ctx, env)


def normalized(axes: Callable[[Node, int], Sequence[int]]) -> Rule:
    """``(x − mean)/sigma·scale`` over ``axes(node, rank)``: ``x − mean`` rounds at ulps of
    ``|x|``, which ``1/sigma`` scales, so a row's error is ulps of ``max|y| · max|x| /
    max|x − mean|`` over the row (its conditioning). Outputs shaped like the statistics (mean,
    1/sigma) cancel at ulps of ``mean(|x|)``."""
    def rule(ctx: EnvelopeContext) -> np.ndarray | None:
        own = ctx.own
        if not ctx.is_float(0) or not own.ndim:
            return None
        ax = tuple(sorted(a + own.ndim if a < 0 else a for a in axes(ctx.node, own.ndim)))
        if not ax:
            return None
        x0 = np.asarray(ctx.args[0])
        x = np.abs(x0.astype(np.float64))
        dev = np.abs(x0 - np.mean(x0, axis=ax, keepdims=True, dtype=np.float64))
        with np.errstate(all="ignore"):
            cond = np.max(x, axis=ax, keepdims=True) / np.max(dev, axis=ax, keepdims=True)
        cond = np.where(np.isfinite(cond), np.maximum(cond, 1.0), 1.0)
        if x.shape == own.shape:
            row = np.max(np.where(np.isfinite(own), own, 0.0), axis=ax, keepdims=True) * cond
            return np.maximum(own, np.broadcast_to(row, own.shape))
        stat = np.mean(x, axis=ax, keepdims=True)
        return np.maximum(own, stat) if stat.shape == own.shape else None
    rule.__name__ = "normalized"
    return rule


def convex_in(i: int) -> Rule:
    """Each output element is a convex combination of input ``i``'s elements (attention's rows
    of V): its error scales with the largest of them."""
    def rule(ctx: EnvelopeContext) -> np.ndarray | None:
        if not ctx.is_float(i) or not ctx.own.size:
            return None
        return np.maximum(ctx.own, float(np.max(ctx.envelope(i), initial=0.0)))
    rule.__name__ = f"convex_in({i})"
    return rule


def product_of_inputs(inputs: Sequence[int], length_axis: tuple[int, int]) -> Rule:
    """A sum over a length of products of the named inputs (a recurrent state q·Σ k⊗v):
    ``Π max|input| · length``, the length read from ``args[length_axis[0]].shape[length_axis[1]]``."""
    def rule(ctx: EnvelopeContext) -> np.ndarray | None:
        if not all(ctx.is_float(i) for i in inputs) or not ctx.own.size:
            return None
        bound = 1.0
        for i in inputs:
            bound *= float(np.max(ctx.envelope(i), initial=0.0))
        src, ax = np.asarray(ctx.args[length_axis[0]]), length_axis[1]
        length = src.shape[ax] if -src.ndim <= ax < src.ndim else 1
        return np.maximum(ctx.own, bound * max(length, 1))
    rule.__name__ = "product_of_inputs"
    return rule


def generator(ctx: EnvelopeContext) -> np.ndarray | None:
    """No float input (windows, EyeLike, ConstantOfShape, ...): elements come from terms of
    order one (Blackman's 0.42 − 0.5·cos + 0.08·cos), not from their own tiny values; exact
    generators lose nothing by the wider envelope."""
    own = ctx.own
    if not own.size:
        return None
    finite = own[np.isfinite(own)]
    return np.maximum(own, max(float(finite.max(initial=0.0)), 1.0))


#: the rule of an op that declares none, by category
_BY_CATEGORY: dict[str, Rule] = {"elementwise": elementwise, "movement": linear_in(0), "view": linear_in(0)}


def own(ctx: EnvelopeContext) -> np.ndarray | None:
    """The element's own magnitude (a rounding such as ``Cast``: nothing wider went in)."""
    return None


def default_rule(node: Node, float_inputs: bool) -> Rule | None:
    """The rule a node's spec declares (``envelope=``), else :func:`generator` for a node without
    float inputs, else its category's; None means the element's own magnitude."""
    spec = node.spec
    if spec is None:
        return None
    declared = spec.extra.get("envelope")
    if declared is not None:
        return declared
    if not float_inputs:
        return generator
    return _BY_CATEGORY.get(spec.category)
