"""Seeded random inputs of the right dtypes and shapes for any graph (in `ir` so that passes that
calibrate and commands that run a model can draw them without the test harness).

Graphs made by ``ridgeline.testing.strategies`` say in ``graph.meta["testing"]`` where each input
must lie (``ranges``: inside Log's or Acosh's domain, away from a divisor's zero), how to fill
special ones (``kinds``: ``rowmask`` is a boolean attention mask that keeps one key per row,
``specials`` holds NaN and ±inf among in-range values) and
the sizes of their symbolic dims (``dims``); those inputs follow that. For any other graph, integer
inputs that index something (token ids feeding a ``Gather``) stay inside the indexed dim; inputs
named like masks are all ones and position ids count up, so an exported transformer runs on what
it was built for.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import IRError
from .graph import Graph, Value

__all__ = ["MAX_RANDOM_BYTES", "concrete_shape", "random_inputs", "restore_dtypes", "testing_meta"]

#: random inputs are for trying a model out: refuse to invent more than this many bytes of them
MAX_RANDOM_BYTES = 2 ** 31


def testing_meta(graph: Graph) -> dict[str, Any]:
    """What the generator recorded about ``graph``'s inputs (empty for other graphs)."""
    meta = graph.meta.get("testing")
    return dict(meta) if isinstance(meta, Mapping) else {}


def concrete_shape(v: Value, dims: Mapping[str, int]) -> tuple[int, ...]:
    """The value's shape with symbolic dims taken from ``dims`` (unbound symbols raise)."""
    from . import dims as D
    out = []
    for d in v.type.shape:
        d = D.substitute(d, dims)
        if not isinstance(d, int):
            raise IRError(f"input %{v.name}: {v.type} has unbound dims; give them with --dim NAME=SIZE")
        out.append(d)
    return tuple(out)


def _index_bound(v: Value) -> int | None:
    """The smallest dim this integer value indexes into, following views and casts."""
    bound = None
    frontier, seen = [v], set()
    while frontier:
        x = frontier.pop()
        if id(x) in seen:
            continue
        seen.add(id(x))
        for node, i in x.uses:
            if node.op in ("Gather", "GatherElements") and i == 1:
                data = node.inputs[0].type.shape
                axis = node.attr("axis") % max(len(data), 1)
                if isinstance(data[axis], int):
                    bound = data[axis] if bound is None else min(bound, data[axis])
            elif node.op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "Expand") and i == 0:
                frontier.extend(node.outputs)
    return bound


def _in_range(rng: np.random.Generator, shape: tuple[int, ...], dt, lo: float, hi: float) -> np.ndarray:
    if dt.kind == "bool":
        return rng.random(shape) < 0.5
    if dt.is_integer:
        return rng.integers(int(lo), int(hi) + 1, size=shape).astype(dt.np_dtype)
    return rng.uniform(lo, hi, size=shape).astype(dt.np_dtype)


def _rowmask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    arr = rng.random(shape) < 0.6
    if arr.ndim:
        arr[..., 0] = True  # every query keeps at least one key: no all-masked softmax row
    return arr


def _specials(rng: np.random.Generator, arr: np.ndarray) -> np.ndarray:
    """``arr`` with about a third of its elements replaced by NaN, +inf or -inf."""
    arr = np.array(arr)
    if arr.size:
        hit = rng.random(arr.shape) < 0.35
        arr[hit] = rng.choice(np.array([np.nan, np.inf, -np.inf]), size=int(hit.sum())).astype(arr.dtype)
    return arr


def random_inputs(graph: Graph, *, seed: int = 0, dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """One array per graph input: values inside the ranges the generator recorded, else normal
    floats, in-range indices, ones for masks. ``dims`` sizes symbolic dims (default: the sizes the
    generator bound them to)."""
    rng = np.random.default_rng(seed)
    meta = testing_meta(graph)
    ranges = meta.get("ranges") or {}
    kinds = meta.get("kinds") or {}
    dims = {**dict(meta.get("dims") or {}), **dict(dims or {})}
    out: dict[str, np.ndarray] = {}
    shapes = {v.name: concrete_shape(v, dims) for v in graph.inputs}
    total = sum(v.type.dtype.nbytes(math.prod(shapes[v.name])) for v in graph.inputs)
    if total > MAX_RANDOM_BYTES:
        raise IRError(f"random inputs for these dims would take {total / 2 ** 30:.3g} GiB "
                      f"(limit {MAX_RANDOM_BYTES / 2 ** 30:g} GiB); bind smaller dims or pass your own inputs")
    for v in graph.inputs:
        shape = shapes[v.name]
        dt = v.type.dtype
        lname = v.name.lower()
        if kinds.get(v.name) == "rowmask":
            arr = _rowmask(rng, shape)
        elif kinds.get(v.name) == "specials" and v.name in ranges:
            arr = _specials(rng, _in_range(rng, shape, dt, *ranges[v.name]))
        elif v.name in ranges:
            lo, hi = ranges[v.name]
            arr = _in_range(rng, shape, dt, lo, hi)
        elif dt.kind == "bool":
            arr = np.ones(shape, bool) if "mask" in lname else rng.random(shape) < 0.5
        elif dt.is_integer:
            if "mask" in lname:
                arr = np.ones(shape, dt.np_dtype)
            elif "position" in lname or lname.endswith("pos"):
                arr = np.broadcast_to(np.arange(shape[-1]) if shape else np.array(0), shape).astype(dt.np_dtype)
            else:
                bound = _index_bound(v) or 8
                arr = rng.integers(0, bound, size=shape).astype(dt.np_dtype)
        else:
            arr = rng.standard_normal(shape).astype(dt.np_dtype)
        out[v.name] = np.array(arr, order="C")  # ascontiguousarray would make a 0-d array 1-d
    return out


def restore_dtypes(graph: Graph, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Arrays read back from ``.npz`` with the graph inputs' dtypes: numpy saves bf16, fp8 and
    int4 arrays (ml_dtypes) as raw void bytes, which this views as the dtype the input declares."""
    want = {v.name: v.type.dtype.np_dtype for v in graph.inputs}
    out = {}
    for name, a in arrays.items():
        dt = want.get(name)
        if dt is not None and a.dtype.kind == "V" and a.dtype != dt and a.dtype.itemsize == dt.itemsize:
            a = a.view(dt)
        out[name] = a
    return out
