"""Shared pieces of the normalization fusions: reduction axes, epsilon, and the scale operand."""

from __future__ import annotations

import numpy as np

from ...ir import Value
from ..rewriter import Match, RewriteBuilder

__all__ = ["attr_float", "check_norm", "ones_like_norm", "scale_operand", "stash", "trailing_axis"]


def attr_float(value: np.ndarray | float) -> float:
    """A float attribute from a constant: float32 data keeps its shortest spelling (1e-05, not
    9.999999747378752e-06), which is the same float32 the ONNX attribute stores."""
    arr = np.asarray(value)
    x = arr.reshape(-1)[0]
    if arr.dtype == np.float32:
        return float(repr(np.float32(x)).removeprefix("np.float32(").removesuffix(")"))
    return float(x)


def trailing_axis(m: Match, *names: str) -> int | str:
    """The first normalized axis if every ReduceMean in ``names`` reduces the same trailing axes."""
    rank = m["x"].type.rank
    axes_sets = []
    for name in names:
        n = m.node(name)
        if n.attr("keepdims") != 1 or len(n.inputs) < 2 or n.inputs[1] is None or n.inputs[1].data is None:
            return f"{name} must keep dims and reduce constant axes"
        axes_sets.append(sorted(int(a) % rank for a in np.asarray(n.inputs[1].data).reshape(-1)))
    axes = axes_sets[0]
    if any(a != axes for a in axes_sets) or not axes or axes != list(range(rank - len(axes), rank)):
        return f"reduces axes {axes_sets}, not the same trailing axes"
    return axes[0]


def scale_operand(m: Match, name: str, axis: int, b: RewriteBuilder | None = None) -> Value | str | None:
    """The scale (or bias) as the op wants it: shaped like the normalized dims.

    Returns the value (reshaped when it carries leading 1s), None when absent, or a reason."""
    v = m.get(name)
    if v is None:
        return None
    x = m["x"].type
    norm = x.shape[axis:]
    shape = v.type.shape
    k = len(shape) - len(norm)
    if k > 0 and all(d == 1 for d in shape[:k]):
        shape = shape[k:]
    elif k > 0:
        return f"{name} {v.type} has more dims than the normalized dims {list(norm)}"
    if tuple(shape) != tuple(norm[len(norm) - len(shape):]) or v.type.dtype != x.dtype:
        return f"{name} {v.type} does not match the normalized dims {list(norm)} of {x}"
    if len(shape) != len(v.type.shape):
        if b is None:
            return v
        if v.const and v.data is not None:
            return b.constant(v.data.reshape(shape), v.name)
        return b.Reshape(v, b.constant(np.array(shape, dtype=np.int64), "shape"))
    return v


def ones_like_norm(m: Match, axis: int, b: RewriteBuilder) -> Value | None:
    norm = m["x"].type.shape[axis:]
    if not all(isinstance(d, int) for d in norm):
        return None
    return b.constant(np.ones(norm, dtype=m["x"].type.dtype.np_dtype), "ones")


def check_norm(m: Match, reductions: tuple[str, ...], operands: tuple[str, ...]) -> bool | str:
    """A norm fusion's check: the ReduceMeans ``reductions`` over the same trailing axes of a
    float x, and each of ``operands`` (scale, bias) per channel; without a scale, static
    normalized dims to build a ones scale from."""
    axis = trailing_axis(m, *reductions)
    if isinstance(axis, str):
        return axis
    if m["x"].type.dtype.name not in ("f32", "f16", "bf16", "f64"):
        return f"x is {m['x'].type.dtype.name}, not a float"
    for name in operands:
        why = scale_operand(m, name, axis)
        if isinstance(why, str):
            return why
    if "scale" not in m and not all(isinstance(dm, int) for dm in m["x"].type.shape[axis:]):
        return "no scale and symbolic normalized dims: cannot build a ones scale"
    return True


def stash(m: Match) -> dict:
    """The fused op's ``stash_type``: the statistics default to f32 (1); an f64 decomposition keeps
    its precision only with 11."""
    return {"stash_type": 11} if m["x"].type.dtype.name == "f64" else {}
