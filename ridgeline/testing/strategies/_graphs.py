"""``graphs()``: the hypothesis strategy for valid random graphs over the ops with a spec."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from hypothesis import strategies as st

from ...ir import Graph
from ...ir.errors import IRError
from ...ir.ops import all_specs
from ...ir.ops.spec import CATEGORIES
from ._context import GenContext, GraphConfig
from .recipes import get_recipe

__all__ = ["graphs", "Shapes", "op_names", "DEFAULT_DTYPES"]

#: dtypes of generated tensors in order of preference: f32 most of the time, every dtype sometimes
DEFAULT_DTYPES = ("f32", "i64", "bool", "f16", "i32", "f64", "bf16", "i8", "u8", "i16", "u16", "u32", "u64",
                  "f8e4m3", "f8e5m2", "i4", "u4")

# the order ops are drawn in: hypothesis shrinks toward the first, so the simplest come first
_CATEGORY_ORDER = ["elementwise", "view", "movement", "reduction", "matmul", "normalization", "shape",
                   "attention", "quant", "fused", "other"]
_FIRST = ["Relu", "Add", "Mul", "Neg", "Sub", "Tanh", "Exp", "Div", "Sigmoid", "MatMul", "Reshape", "Transpose"]


@dataclass(frozen=True)
class Shapes:
    """How tensors are shaped: ranks up to ``max_rank``, static dims up to ``max_dim``, and whether
    graphs may carry symbolic dims (``batch``, ``seq``) bound to random sizes."""

    max_rank: int = 4
    max_dim: int = 4
    symbolic: bool = True


def op_names(ops: Iterable[str] | str | None = None) -> tuple[str, ...]:
    """Op names from names and category names (``"elementwise"``), in drawing order; only ops a
    recipe can generate. ``None`` means every such op."""
    specs = all_specs()
    if ops is None:
        wanted = set(specs)
    else:
        if isinstance(ops, str):
            ops = [ops]
        wanted = set()
        for name in ops:
            if name in CATEGORIES:
                wanted |= {n for n, s in specs.items() if s.category == name}
            elif name in specs:
                wanted.add(name)
            else:
                raise IRError(f"graphs(ops=...): unknown op or category {name!r}")
    usable = [n for n in wanted if get_recipe(n) is not None]

    def key(n: str):
        cat = specs[n].category
        return (_FIRST.index(n) if n in _FIRST else len(_FIRST),
                _CATEGORY_ORDER.index(cat) if cat in _CATEGORY_ORDER else len(_CATEGORY_ORDER), n)
    return tuple(sorted(usable, key=key))


def _resolve_shapes(shapes: Shapes | Mapping | None) -> Shapes:
    if shapes is None:
        return Shapes()
    if isinstance(shapes, Shapes):
        return shapes
    return Shapes(**dict(shapes))


def graphs(ops: Iterable[str] | str | None = None, *, dtypes: Iterable[str] | None = None, max_nodes: int = 8,
           min_nodes: int = 1, shapes: Shapes | Mapping | None = None, idioms: Iterable[str] = (),
           dead_code: bool = True) -> st.SearchStrategy[Graph]:
    """Valid random graphs (they verify, run on the numpy reference and give finite outputs).

    ``ops`` — op and category names to draw from (default: every op with a spec);
    ``dtypes`` — tensor dtypes in order of preference (default ``DEFAULT_DTYPES``: f32 mostly; ops
    that need index, mask or quantized types get them anyway); ``max_nodes``/``min_nodes`` — graph
    size; ``shapes`` — a ``Shapes`` (or mapping of its fields): ranks, dim sizes, symbolic dims;
    ``idioms`` — names from ``ridgeline.testing.strategies.IDIOMS`` to mix in (the first step is
    one of them); ``dead_code`` — leave some results unused now and then (for DCE to find).

    The inputs' value ranges and the binding of symbolic dims are kept in
    ``graph.meta["testing"]``, which ``random_inputs``/``inputs_for`` read. Shrinking removes
    nodes, turns constants into inputs, dims into 1 and dtypes into the first preferred one.
    """
    from .idioms import IDIOMS
    sh = _resolve_shapes(shapes)
    idioms = tuple(idioms)
    for name in idioms:
        if name not in IDIOMS:
            raise IRError(f"graphs(idioms=...): unknown idiom {name!r}; known: {', '.join(IDIOMS)}")
    names = op_names(ops) if ops is not None or not idioms else ()
    if not names and not idioms:
        raise IRError(f"graphs(ops={ops!r}): no op there has a generator recipe")
    cfg = GraphConfig(ops=names, idioms=idioms, dtypes=tuple(dtypes) if dtypes is not None else DEFAULT_DTYPES,
                      min_nodes=min_nodes, max_nodes=max(max_nodes, min_nodes), max_rank=sh.max_rank,
                      max_dim=sh.max_dim, symbolic=sh.symbolic, dead_code=dead_code)
    steps = tuple((name, _op_step(name)) for name in cfg.ops) + tuple((name, IDIOMS[name]) for name in idioms)
    return _graph(cfg, steps)


@st.composite
def _graph(draw, cfg: GraphConfig, steps) -> Graph:
    from .idioms import IDIOMS
    ctx = GenContext(draw, cfg)
    if cfg.symbolic and ctx.rare():
        dims = ["batch", "seq"][:ctx.integer(1, 2)]
        ctx.binding.update({d: ctx.integer(1, cfg.max_dim) for d in dims})
    ctx._seed = ctx.integer(0, 1 << 16)
    attempts = 0
    if cfg.idioms:  # an idiom strategy always holds its idiom
        for _ in range(4):
            attempts += 1
            if ctx.step(IDIOMS[ctx.choice(cfg.idioms)]):
                break
    # Each step is one span of draws, preceded by its "go on?" draws (as hypothesis' own lists
    # do), so the shrinker deletes a step as a unit and ends a graph early by zeroing a "go on?".
    # (Drawing the node count up front would tie every deletion to a change of that count.)
    while len(ctx.graph) < cfg.max_nodes and attempts < 4 * cfg.max_nodes + 4:
        attempts += 1
        if not draw(_step(ctx, steps, len(ctx.graph) >= cfg.min_nodes)):
            break
    if len(ctx.graph) < cfg.min_nodes:
        from hypothesis import reject
        reject()
    return ctx.finish()


@st.composite
def _step(draw, ctx: GenContext, steps, may_stop: bool) -> bool:
    """One step of the graph (False: the graph ends here)."""
    outer = ctx._draw
    ctx._draw = draw
    try:
        # two draws must both be 0 to stop: hypothesis draws 0 far more often than 1 in 16, and
        # a shrinker cutting the graph short replays zeros, which must mean "stop" (not "pad")
        # (drawn even when the graph may not stop yet, so every step's draws line up the same)
        stop = ctx.integer(0, 15) == 0
        stop = ctx.integer(0, 3) == 0 and stop
        if stop and may_stop:
            return False
        _, fn = ctx.choice(steps)
        ctx.step(fn)
        return True
    finally:
        ctx._draw = outer


def _op_step(op: str):
    fn = get_recipe(op)

    def step(ctx: GenContext) -> None:
        fn(ctx, op)
    step.__name__ = f"recipe_{op}"
    return step
