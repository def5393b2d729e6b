"""The state of one random graph being built: the graph, the pool of values later nodes may read,
and what the generator knows about each value.

NNSmith's insight is that a generator which knows every op's type constraints builds valid graphs
by construction instead of filtering invalid ones. Here the op specs supply the constraints (ports,
type letters, attributes) and the recipes in ``recipes/`` add what a spec cannot say (a Reshape
keeps the element count, a Gather index stays in range). On top of validity the context tracks,
per value,

* a **range** ``[lo, hi]`` that bounds every element, so domain-restricted ops (Log, Sqrt, Div,
  Acosh, …) only ever see inputs inside their domain and nothing overflows its dtype;
* **exactness**: whether the value is computed without rounding that a pass or another backend
  may legitimately change (graph inputs, constants, data movement, integer arithmetic). Ops that
  are discontinuous in their input — comparisons, Floor, ArgMax, casts to integers, quantization —
  read only exact values, so a one-ulp difference upstream can never flip their result and make a
  correct pass look wrong.

Hypothesis shrinks toward the first choice of every draw, so the context orders choices simplest
first: reuse the oldest value, make new leaves graph inputs rather than constants, static dims of
size 1, the preferred dtype (the first in ``dtypes``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from hypothesis import strategies as st

from ...ir import Graph, Node, Value
from ...ir import dims as D
from ...ir.dtypes import DTYPES
from ...ir.errors import IRError, VerifyError
from ...ir.infer import is_unknown
from ...ir.types import TensorType

__all__ = ["Skip", "Info", "GraphConfig", "GenContext", "FLOATS", "BOUND", "DEFAULT_RANGE"]

FLOATS = frozenset({"f64", "f32", "f16", "bf16", "f8e4m3", "f8e5m2"})

#: the largest magnitude a generated float value may reach, per dtype: far from overflow, and small
#: enough that rounding errors stay comparable to the tolerances of ``ridgeline.testing.compare``
BOUND = {"f64": 1e7, "f32": 1e7, "f16": 2e3, "bf16": 2e3, "f8e4m3": 200.0, "f8e5m2": 2e3}

#: range of fresh floating-point leaves (inputs and constants) unless an op asks for another domain
DEFAULT_RANGE = (-2.0, 2.0)
#: a value is read from the pool with a draw in [0, _REUSE]: below the pool's size it picks that
#: value, above it a fresh leaf
_REUSE = 8
_INT_RANGE = (-8, 8)

#: ops whose float results are exactly determined by exact inputs (no rounding a backend may change)
EXACT_FLOAT_OPS = frozenset({
    "Relu", "Abs", "Neg", "Max", "Min", "Where", "Clip", "Floor", "Ceil", "Round", "Sign", "Cast", "CastLike",
    "Hardmax", "ReduceMax", "ReduceMin", "TopK", "OneHot", "EyeLike", "ConstantOfShape", "Identity", "Dropout",
    "QuantizeLinear", "DynamicQuantizeLinear", "ThresholdedRelu", "Shrink",
})
_EXACT_CATEGORIES = frozenset({"view", "movement", "shape"})


class Skip(Exception):
    """A recipe cannot apply to the graph as it stands; the step adds nothing."""


@dataclass
class Info:
    """What the generator knows about a value."""

    lo: float
    hi: float
    #: computed without rounding that passes or backends may legitimately change
    exact: bool = True
    #: has data-dependent dims (NonZero, Compress): only shape-agnostic ops may read it
    dynamic: bool = False

    def within(self, lo: float, hi: float) -> bool:
        return lo <= self.lo and self.hi <= hi

    @property
    def magnitude(self) -> float:
        return max(abs(self.lo), abs(self.hi))


@dataclass(frozen=True)
class GraphConfig:
    """Knobs of ``graphs()``; see its docstring."""

    ops: tuple[str, ...]
    idioms: tuple[str, ...] = ()
    dtypes: tuple[str, ...] = ("f32",)
    min_nodes: int = 1
    max_nodes: int = 8
    max_rank: int = 4
    max_dim: int = 4
    symbolic: bool = True
    dead_code: bool = True


def dtype_limits(name: str) -> tuple[float, float]:
    """The range a value of dtype ``name`` may take in generated graphs."""
    if name in BOUND:
        return -BOUND[name], BOUND[name]
    if name == "bool":
        return 0.0, 1.0
    info = np.iinfo(DTYPES[name].np_dtype) if name not in ("i4", "u4") else None
    if info is None:
        return (-8.0, 7.0) if name == "i4" else (0.0, 15.0)
    return float(info.min), float(info.max)


class GenContext:
    """One graph under construction; recipes call its helpers (see the module docstring)."""

    def __init__(self, draw: Callable[[st.SearchStrategy], Any], config: GraphConfig, *,
                 graph: Graph | None = None, parent: "GenContext | None" = None):
        self._draw = draw
        self.config = config
        self.graph = graph if graph is not None else Graph("random")
        self.parent = parent
        self.info: dict[int, Info] = {} if parent is None else parent.info
        self.pool: list[Value] = []
        #: values a recipe kept for itself (masked scores full of -inf): never extra graph outputs
        self.private: set[int] = set() if parent is None else parent.private
        self.binding: dict[str, int] = {} if parent is None else parent.binding
        self.input_ranges: dict[str, list] = {}
        self.input_kinds: dict[str, str] = {}
        self._seed = 0
        self._const_count = 0

    # ------------------------------------------------------------------ drawing
    def draw(self, strategy: st.SearchStrategy) -> Any:
        return self._draw(strategy)

    def flag(self) -> bool:
        """A fair coin that shrinks to False."""
        return self.draw(st.booleans())

    def rare(self) -> bool:
        """True one time in four; shrinks to False."""
        return self.draw(st.integers(0, 3)) == 3

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def choice(self, options: Sequence[Any]) -> Any:
        """One of ``options``, shrinking toward the first."""
        options = list(options)
        if not options:
            raise Skip("nothing to choose from")
        return options[0] if len(options) == 1 else self.draw(st.sampled_from(options))

    def subset(self, options: Sequence[Any], *, min_size: int = 0) -> list[Any]:
        picked = [o for o in options if self.flag()]
        if len(picked) < min_size:
            picked = list(options[:min_size])
        return picked

    def uniform(self, lo: float, hi: float) -> float:
        """A float in [lo, hi] (shrinks toward simple values)."""
        return float(self.draw(st.floats(lo, hi, allow_nan=False, allow_infinity=False, width=32)))

    def rng(self) -> np.random.Generator:
        """A numpy generator for bulk data (constant arrays), seeded from the graph's draws."""
        root = self.parent if self.parent is not None else self
        root._const_count += 1  # generation must be a pure function of the draws: no ids, no clocks
        return np.random.default_rng([root._seed, root._const_count])

    # ------------------------------------------------------------------ dtypes and dims
    def dtype(self, allowed: Iterable[str]) -> str:
        """A dtype from ``allowed``: the configured dtypes in preference order, falling back to the
        ones an op needs for indices, masks and quantized data when no configured dtype fits."""
        allowed = set(allowed)
        prefs = [d for d in self.config.dtypes if d in allowed]
        if not prefs:
            prefs = [d for d in ("i64", "bool", "i32", "u8", "i8", "f32") if d in allowed]
        if not prefs:
            raise Skip(f"no configured dtype among {sorted(allowed)}")
        if len(prefs) == 1 or self.draw(st.integers(0, 3)) < 3:
            return prefs[0]
        return self.choice(prefs[1:])

    def dim(self, *, static: bool = False) -> D.Dim:
        if not static and self.binding and self.rare():
            return self.choice(sorted(self.binding))
        return self.integer(1, self.config.max_dim)

    def shape(self, rank: int | None = None, *, min_rank: int = 0, max_rank: int | None = None,
              static: bool = False) -> tuple:
        if rank is None:
            hi = self.config.max_rank if max_rank is None else max_rank
            rank = self.integer(min(min_rank, hi), hi)
        return tuple(self.dim(static=static) for _ in range(rank))

    def size(self, d: D.Dim) -> int:
        """The concrete size of a dim under the graph's binding."""
        if isinstance(d, int):
            return d
        v = D.substitute(d, self.binding)
        if not isinstance(v, int):
            raise Skip(f"dim {d} is not bound")
        return v

    def sizes(self, shape: Sequence[D.Dim]) -> tuple[int, ...]:
        return tuple(self.size(d) for d in shape)

    # ------------------------------------------------------------------ values
    def info_of(self, v: Value) -> Info:
        return self.info[id(v)]

    def candidates(self, dtypes: Iterable[str] | None = None, *, min_rank: int = 0, max_rank: int | None = None,
                   static: bool = False, within: tuple[float, float] | None = None, exact: bool = False,
                   where: Callable[[Value], bool] | None = None, allow_dynamic: bool = False) -> list[Value]:
        dts = set(dtypes) if dtypes is not None else None
        out = []
        for v in self.pool:
            inf = self.info[id(v)]
            t = v.type
            if dts is not None and t.dtype.name not in dts:
                continue
            if t.rank < min_rank or (max_rank is not None and t.rank > max_rank):
                continue
            if static and not t.is_static:
                continue
            if inf.dynamic and not allow_dynamic:
                continue
            if exact and not inf.exact:
                continue
            if within is not None and not inf.within(*within):
                continue
            if where is not None and not where(v):
                continue
            out.append(v)
        return out

    def pick(self, dtypes: Iterable[str], *, min_rank: int = 0, max_rank: int | None = None, static: bool = False,
             within: tuple[float, float] | None = None, exact: bool = False,
             where: Callable[[Value], bool] | None = None, allow_dynamic: bool = False,
             shape: Sequence[D.Dim] | None = None, fresh: bool | None = None,
             fresh_shape: Callable[[], Sequence[D.Dim]] | None = None) -> Value:
        """A value to read: one already in the pool that satisfies the constraints (the oldest
        first when shrinking), or a fresh leaf that does (of ``shape``, or ``fresh_shape()``)."""
        # the configured dtypes when the op takes any of them: other dtypes only where an op needs them
        dtypes = [d for d in dtypes if d in self.config.dtypes] or list(dtypes)
        cands = [] if fresh else self.candidates(dtypes, min_rank=min_rank, max_rank=max_rank, static=static,
                                                  within=within, exact=exact, where=where,
                                                  allow_dynamic=allow_dynamic)
        if shape is not None:
            cands = [v for v in cands if tuple(v.type.shape) == tuple(shape)]
        # the same draw whatever the pool holds: deleting an earlier step then leaves the draws of
        # later ones aligned, which is what lets the shrinker delete it
        k = self.integer(0, _REUSE)
        if k < len(cands):
            return cands[k]
        dt = self.dtype(dtypes)
        if shape is None and fresh_shape is not None:
            shape = tuple(fresh_shape())
        if shape is None:
            hi = self.config.max_rank if max_rank is None else min(max_rank, self.config.max_rank)
            shape = self.shape(min_rank=min(min_rank, hi), max_rank=max(hi, min_rank), static=static)
        v = self.leaf(dt, shape, within=within)
        if where is not None and not where(v):
            raise Skip("a fresh leaf does not meet the recipe's constraint")
        return v

    def leaf_range(self, dtype: str, within: tuple[float, float] | None = None) -> tuple[float, float]:
        """The range of a fresh leaf: the default range, moved inside ``within``."""
        if dtype == "bool":
            return 0.0, 1.0
        lo, hi = DEFAULT_RANGE if dtype in FLOATS else _INT_RANGE
        dlo, dhi = dtype_limits(dtype)
        lo, hi = max(lo, dlo), min(hi, dhi)
        if within is not None:
            wlo, whi = within
            if wlo > lo or whi < hi:
                lo, hi = max(lo, wlo), min(hi, whi)
                if lo > hi:  # the domain lies outside the default range: take a slice of it
                    lo = wlo if math.isfinite(wlo) else whi - 2.0
                    hi = min(whi, lo + 2.0)
        if dtype not in FLOATS:
            lo, hi = math.ceil(lo), math.floor(hi)
            if lo > hi:
                raise Skip(f"no {dtype} value in {within}")
        return float(lo), float(hi)

    def leaf(self, dtype: str, shape: Sequence[D.Dim], *, within: tuple[float, float] | None = None,
             lo: float | None = None, hi: float | None = None, const: bool | None = None, kind: str = "") -> Value:
        """A new graph input or constant (constants only for static shapes)."""
        if lo is None or hi is None:
            lo, hi = self.leaf_range(dtype, within)
        static = all(isinstance(d, int) for d in shape)
        if const is None:
            # a fused body has no inputs of its own: its new leaves are constants
            const = static and (self.parent is not None or self.draw(st.integers(0, 2)) == 2)
        if const and static and not kind:
            return self.constant(self.random_array(dtype, shape, lo, hi), lo=lo, hi=hi)
        return self.input(dtype, shape, lo, hi, kind=kind)

    def input(self, dtype: str, shape: Sequence[D.Dim], lo: float, hi: float, *, kind: str = "") -> Value:
        if self.parent is not None:
            raise Skip("a body cannot grow new inputs")
        name = self.graph.fresh_name(f"x{len(self.graph.inputs)}")
        v = self.graph.add_input(name, TensorType(DTYPES[dtype], tuple(shape)))
        self.info[id(v)] = Info(lo, hi, exact=True)
        if dtype != "bool":
            self.input_ranges[name] = [lo, hi] if dtype in FLOATS else [int(lo), int(hi)]
        if kind:
            self.input_kinds[name] = kind
        self.pool.append(v)
        return v

    def random_array(self, dtype: str, shape: Sequence[int], lo: float, hi: float) -> np.ndarray:
        rng = self.rng()
        npd = DTYPES[dtype].np_dtype
        if dtype == "bool":
            return rng.random(tuple(shape)) < 0.5
        if dtype in FLOATS:
            return rng.uniform(lo, hi, size=tuple(shape)).astype(npd)
        return rng.integers(int(lo), int(hi) + 1, size=tuple(shape)).astype(npd)

    def constant(self, data: Any, *, lo: float | None = None, hi: float | None = None, name: str = "c",
                 pool: bool = True) -> Value:
        """A constant holding ``data`` (its range is its min and max unless given)."""
        arr = np.asarray(data)
        v = self.graph.add_constant(self.graph.fresh_name(name), arr)
        if lo is None or hi is None:
            if arr.size:
                f = arr.astype(np.float64)
                lo, hi = float(f.min()), float(f.max())
            else:
                lo = hi = 0.0
        self.info[id(v)] = Info(lo, hi, exact=True)
        if pool:
            self.pool.append(v)
        return v

    def ints(self, values: Sequence[int] | int, dtype: str = "i64") -> Value:
        """A small integer constant (axes, shapes, indices) kept out of the pool."""
        return self.constant(np.asarray(values, dtype=DTYPES[dtype].np_dtype), name="k", pool=False)

    def scalar(self, value: float, dtype: str, *, shape: Sequence[int] = ()) -> Value:
        """A constant of one value (kept out of the pool)."""
        return self.constant(np.full(tuple(shape), value, dtype=DTYPES[dtype].np_dtype), name="s", pool=False)

    def operand_for(self, x: Value, dtypes: Iterable[str] | None = None, *,
                    within: tuple[float, float] | None = None, exact: bool = False,
                    same_shape: bool = False, grow: bool = True) -> Value:
        """A second operand for ``x`` that broadcasts with it (its own shape, a suffix of it with
        some dims set to 1, or occasionally a larger shape ``x`` broadcasts to)."""
        dtypes = [x.type.dtype.name] if dtypes is None else list(dtypes)
        xs = tuple(x.type.shape)

        def fits(v: Value) -> bool:
            vs = tuple(v.type.shape)
            if same_shape:
                return vs == xs
            if len(vs) > len(xs):
                return False
            return all(a == b or b == 1 for a, b in zip(xs[len(xs) - len(vs):], vs))

        cands = self.candidates(dtypes, within=within, exact=exact, where=fits)
        k = self.integer(0, _REUSE)
        if k < len(cands):
            return cands[k]
        if same_shape:
            shape = xs
        else:
            rank = self.integer(0, len(xs)) if xs else 0
            shape = tuple(d if self.flag() else 1 for d in xs[len(xs) - rank:])
            if grow and self.rare() and len(xs) < self.config.max_rank:
                shape = (self.dim(),) + tuple(xs)  # x broadcasts up to this
            if self.flag():
                shape = xs[len(xs) - len(shape):] if len(shape) <= len(xs) else shape
        return self.leaf(self.dtype(dtypes), shape, within=within)

    # ------------------------------------------------------------------ nodes
    def add(self, op: str, inputs: Sequence[Value | None], attrs: Mapping[str, Any] | None = None, *,
            outputs: int | None = None, ranges: Sequence[tuple[float, float]] | None = None,
            exact: bool | None = None, dynamic: bool = False, pool: bool = True, body: Graph | None = None) -> Node:
        """Add a node; raise ``Skip`` when its spec rejects it or a result would leave its range.

        ``ranges`` bounds each output; without it, elementwise ops are bounded by evaluating the
        reference kernel over a grid of the inputs' ranges and data movement keeps its input's range.
        """
        inputs = list(inputs)
        while inputs and inputs[-1] is None:
            inputs.pop()
        try:
            node = self.graph.add_node(op, inputs, attrs or {}, outputs=outputs, body=body)
        except (VerifyError, IRError) as e:
            raise Skip(str(e)) from None
        ins_dynamic = any(self.info[id(v)].dynamic for v in inputs if v is not None)
        try:
            if any(d == 0 for v in node.outputs for d in v.type.shape):
                raise Skip(f"{op} would make an empty tensor")  # valid, but kernels and runtimes disagree
            if not (dynamic or ins_dynamic) and any(is_unknown(d) for v in node.outputs for d in v.type.shape):
                # e.g. a symbolic dim broadcast against a number: valid for some sizes only
                raise Skip(f"{op} would have dims known only at run time")
            outs = self._ranges(node, ranges)
            for v, (lo, hi) in zip(node.outputs, outs):
                # values kept out of the pool (masks full of -1e4, scores after masking) flow only
                # into what their recipe built for them: their bounds are the recipe's business
                dlo, dhi = dtype_limits(v.type.dtype.name) if pool else (-math.inf, math.inf)
                if not (math.isfinite(lo) and math.isfinite(hi)) or lo < dlo or hi > dhi:
                    raise Skip(f"{op} would produce values in [{lo:g}, {hi:g}], outside {v.type.dtype}'s "
                               f"generated range")
        except Skip:
            self.graph.erase_node(node)
            raise
        ins_exact = all(self.info[id(v)].exact for v in inputs if v is not None)
        for v, (lo, hi) in zip(node.outputs, outs):
            if exact is None:
                cat = node.spec.category
                ex = ins_exact and (cat in _EXACT_CATEGORIES or op in EXACT_FLOAT_OPS
                                    or v.type.dtype.name not in FLOATS)
            else:
                ex = exact
            self.info[id(v)] = Info(float(lo), float(hi), exact=ex, dynamic=dynamic or ins_dynamic)
            if pool:
                self.pool.append(v)
            else:
                self.private.add(id(v))
        return node

    def _ranges(self, node: Node, given) -> list[tuple[float, float]]:
        if given is not None:
            out = [tuple(map(float, r)) for r in given]
            if len(out) < len(node.outputs):
                out += [out[-1]] * (len(node.outputs) - len(out))
            return out
        out = []
        cat = node.spec.category if node.op != "Fused" else "fused"
        for v in node.outputs:
            name = v.type.dtype.name
            if name == "bool":
                out.append((0.0, 1.0))
            elif cat in ("view", "movement"):
                same = [self.info[id(u)] for u in node.inputs if u is not None and u.type.dtype == v.type.dtype]
                if not same:
                    raise Skip(f"no range rule for {node.op}")
                out.append((min(i.lo for i in same), max(i.hi for i in same)))
            elif cat == "elementwise":
                out.append(None)  # filled below from the kernel
            else:
                raise Skip(f"the recipe of {node.op} gives no output range")
        if any(r is None for r in out):
            grid = grid_ranges(node, [self.info[id(u)] if u is not None else None for u in node.inputs])
            out = [g if r is None else r for r, g in zip(out, grid)]
        return out

    # ------------------------------------------------------------------ steps
    def step(self, fn: Callable[["GenContext"], None]) -> bool:
        """Run one recipe; if it skips, undo whatever it added (leaves, constants, nodes)."""
        g = self.graph
        mark = (len(g.inputs), set(g.constants), g.nodes[-1] if len(g) else None, len(self.pool),
                dict(self.input_ranges), dict(self.input_kinds))
        try:
            fn(self)
            return True
        except Skip:
            self._rollback(*mark)
            return False

    def _rollback(self, n_inputs, consts, last, pool_len, ranges, kinds) -> None:
        g = self.graph
        nodes = g.nodes
        start = nodes.index(last) + 1 if last is not None else 0
        for n in reversed(nodes[start:]):  # a recipe's nodes are read only by its later nodes
            g.erase_node(n)
        for name in [c for c in g.constants if c not in consts]:
            g.remove_constant(g.constants[name])
        for v in g.inputs[n_inputs:]:
            g.remove_input(v)
        del self.pool[pool_len:]
        self.input_ranges, self.input_kinds = ranges, kinds

    # ------------------------------------------------------------------ finishing
    def finish(self) -> Graph:
        """Choose the graph's outputs: every value nothing reads (a few left dead, for DCE to find),
        and now and then a value that is also read further on."""
        g = self.graph
        outs: list[Value] = []
        dead_allowed = self.config.dead_code
        for n in g:
            for v in n.outputs:
                if not v.uses:
                    if not (dead_allowed and self.rare()):
                        outs.append(v)
                elif id(v) not in self.private and self.draw(st.integers(0, 15)) == 15:
                    outs.append(v)
        if not outs:
            last = g.nodes[-1] if len(g) else None
            if last is None:
                raise Skip("empty graph")
            outs.append(last.outputs[0])
        g.outputs = outs
        meta: dict[str, Any] = {}
        if self.binding:
            meta["dims"] = dict(self.binding)
        if self.input_ranges:
            meta["ranges"] = dict(self.input_ranges)
        if self.input_kinds:
            meta["kinds"] = dict(self.input_kinds)
        if meta:
            g.meta["testing"] = meta
        return g


# ---------------------------------------------------------------------- range of an elementwise op
_GRID = {1: 65, 2: 17, 3: 7}


def _grid(info: Info | None, dtype: str, n: int) -> np.ndarray:
    npd = DTYPES[dtype].np_dtype
    if dtype == "bool":
        return np.array([False, True])
    lo, hi = info.lo, info.hi
    pts = np.linspace(lo, hi, n)
    extra = [x for x in (0.0, 1.0, -1.0, 0.5, -0.5) if lo < x < hi]
    pts = np.sort(np.concatenate([pts, extra]))
    if dtype not in FLOATS:
        # integers: whole numbers inside the dtype (and exactly representable as float64)
        pts = np.unique(np.clip(np.round(pts), max(lo, -2.0 ** 53), min(hi, 2.0 ** 53)))
    return pts.astype(npd)


def grid_ranges(node: Node, infos: Sequence[Info | None]) -> list[tuple[float, float]]:
    """Bounds of an elementwise node's outputs: its reference kernel evaluated on a grid spanning
    every input's range (endpoints, interior points, and 0/±½/±1 when inside)."""
    from ...backends.numpy.kernels import get_kernel
    fn = get_kernel(node.op)
    if fn is None:
        raise Skip(f"no reference kernel for {node.op}")
    present = [(i, v) for i, v in enumerate(node.inputs) if v is not None]
    k = len(present)
    n = _GRID.get(k, 5)
    args: list[np.ndarray | None] = [None] * len(node.inputs)
    for j, (i, v) in enumerate(present):
        g = _grid(infos[i], v.type.dtype.name, n)
        shape = [1] * k
        shape[j] = g.size
        args[i] = g.reshape(shape)
    try:
        with np.errstate(all="ignore"):
            res = fn(node, *args)
    except Exception as e:  # a kernel that needs real shapes: the recipe must give ranges
        raise Skip(f"cannot bound {node.op}: {type(e).__name__}: {e}") from None
    res = res if isinstance(res, (tuple, list)) else (res,)
    out = []
    for r in res:
        f = np.asarray(r).astype(np.float64)
        if f.size == 0:
            out.append((0.0, 0.0))
            continue
        if not np.all(np.isfinite(f)):
            raise Skip(f"{node.op} is not finite on its inputs' ranges")
        lo, hi = float(f.min()), float(f.max())
        # a result monotone along every input's grid has its extremes at the grid's ends; any
        # other may peak between grid points: widen it by a little of its span
        monotone = all((np.diff(f, axis=a) >= 0).all() or (np.diff(f, axis=a) <= 0).all()
                       for a in range(f.ndim) if f.shape[a] > 1)
        pad = 0.0 if monotone or np.asarray(r).dtype.kind in "biu" else 0.02 * (hi - lo) + 1e-6
        out.append((lo - pad, hi + pad))
    return out
