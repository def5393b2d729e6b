"""Shape helpers shared by the op families (broadcasting, symbolic elementwise values)."""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from .._lazy import sympy
from .. import dims as D
from .spec import CostContext, InferContext

__all__ = ["broadcast", "broadcast_ctx", "sym_elementwise", "per_element", "normalize_axes", "static_length",
           "compare_dims"]


def _broadcast_dim(a, b):
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ValueError(f"dims {a} and {b} do not broadcast")
    return None  # two different symbols (or a symbol and an int): decided only when bound


def broadcast(*shapes: Sequence) -> tuple:
    """Multidirectional (numpy) broadcasting of static or symbolic shapes; None where unknown."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for k in range(rank):
        dim = 1
        for s in shapes:
            j = k - (rank - len(s))
            if j < 0:
                continue
            d = s[j]
            if d is None or dim is None:
                dim = d if dim == 1 else (dim if d == 1 else None)
                continue
            dim = _broadcast_dim(dim, d)
        out.append(dim)
    return tuple(out)


def broadcast_ctx(ctx: InferContext, indices: Sequence[int] | None = None) -> tuple:
    idx = range(ctx.num_inputs) if indices is None else indices
    shapes = [ctx.shape(i) for i in idx if ctx.has(i)]
    try:
        return broadcast(*shapes)
    except ValueError as e:
        ctx.fail(f"inputs {', '.join(str(s) for s in shapes)} do not broadcast: {e}")


def sym_elementwise(ctx: InferContext, fn: Callable) -> None:
    """Publish the symbolic result of an integer elementwise op when all inputs are known."""
    if ctx.dtype(0).kind not in ("int", "uint"):
        return
    syms = [ctx.sym(i) for i in range(ctx.num_inputs)]
    if any(s is None for s in syms) or any(s.size > 64 for s in syms):
        return
    try:
        out = np.frompyfunc(fn, len(syms), 1)(*syms)
    except Exception:
        return
    ctx.set_sym(0, np.asarray(out, dtype=object))


def per_element(k: float) -> Callable[[CostContext], object]:
    """A FLOPs function: ``k`` operations per output element."""
    def flops(c: CostContext):
        return k * c.out_numel(0)
    flops.__name__ = f"flops_{k}_per_element"
    return flops


def normalize_axes(ctx: InferContext, axes: Sequence[int], rank: int) -> list[int]:
    out = []
    for a in axes:
        a = int(a)
        if not -rank <= a < max(rank, 1):
            ctx.fail(f"axis {a} is out of range for rank {rank}")
        out.append(a % rank if rank else 0)
    if len(set(out)) != len(out):
        ctx.fail(f"repeated axes {list(axes)}")
    return out


def static_length(ctx: InferContext, i: int) -> int:
    """The element count of input ``i``, a 1-D (or scalar) tensor whose values are known only at
    run time (dynamic axes, split sizes): its length still fixes the result's rank."""
    shape = ctx.shape(i)
    n = D.product(shape)
    if len(shape) > 1 or not isinstance(n, int):
        ctx.fail(f"input {i} must be a 1-D tensor of static length, got {ctx.type(i)}")
    return n


@lru_cache(maxsize=4096)
def _as_nonnegative(d) -> sympy.Expr:
    # Dims may be 0 (an empty KV cache), so decide comparisons only for what holds at every size
    # >= 0, not under the positive-symbol assumption dims.py uses for simplification.
    e = D.to_sympy(d)
    return e.subs({s: sympy.Symbol(s.name, integer=True, nonnegative=True) for s in e.free_symbols})


_DECIDE = {  # op -> (predicate on a - b meaning True, predicate meaning False)
    "eq": (lambda e: e.is_zero, lambda e: e.is_zero is False),
    "lt": (lambda e: e.is_negative, lambda e: e.is_nonnegative),
    "le": (lambda e: e.is_nonpositive, lambda e: e.is_positive),
    "gt": (lambda e: e.is_positive, lambda e: e.is_nonpositive),
    "ge": (lambda e: e.is_nonnegative, lambda e: e.is_negative),
}


@lru_cache(maxsize=8192)
def _compare_symbolic(a, b, op: str) -> bool | None:
    # sympy's automatic canonical form decides most comparisons (``past + seq`` against -1);
    # simplify() only for the rest: its first call imports half of sympy (physics, solvers)
    yes, no = _DECIDE[op]
    raw = _as_nonnegative(a) - _as_nonnegative(b)
    for diff in (raw, None):
        if diff is None:
            diff = sympy.simplify(raw)
        if yes(diff):
            return True
        if no(diff):
            return False
    return None


def compare_dims(a, b, op: str) -> bool | None:
    """``a <op> b`` for dims or symbolic shape values (op: eq, lt, le, gt, ge).

    True or False when it holds for every non-negative value of the symbols (``batch == -1`` is
    False, ``past + seq > seq - 1`` is True), None when it depends on them.
    """
    if isinstance(a, int) and isinstance(b, int):
        return {"eq": a == b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    return _compare_symbolic(a, b, op)
