"""Hypothesis strategies for ridgeline graphs: valid random graphs over every op with a spec, the
unfused idioms each fusion looks for, and well-conditioned inputs.

    from hypothesis import given
    from ridgeline.testing import strategies as rs

    @given(rs.graphs(ops=["elementwise", "MatMul"], dtypes=["f32", "f16"], max_nodes=12))
    def test_my_backend(g): ...

    @given(rs.attention_blocks())          # decomposed attention in GPT-2/BERT/Llama export shapes
    def test_my_fusion(g): ...

Generated graphs verify, run on the numpy reference and give finite outputs on ``inputs_for``'s
inputs. How they are built — op recipes over the specs, value ranges, exactness — is described in
``_context.py``; which op each recipe covers, in ``coverage_table()``.
"""

from __future__ import annotations

from typing import Callable, Iterable, Mapping

import numpy as np
from hypothesis import strategies as st

from ...ir import Graph
from ..inputs import random_inputs, testing_meta
from . import edges  # registers the edge-value idioms
from ._context import GenContext, GraphConfig, Info, Skip
from ._graphs import DEFAULT_DTYPES, Shapes, graphs, op_names
from .idioms import IDIOMS, idiom
from .recipes import coverage_table, get_recipe, recipe

__all__ = [
    "graphs", "Shapes", "inputs_for", "default_graphs", "unfused", "attention_blocks", "gelu_idioms",
    "layernorm_idioms", "rmsnorm_idioms", "rotary_idioms", "matmul_epilogues", "elementwise_chains",
    "canonicalize_idioms", "duplicate_idioms", "folding_idioms", "coverage_table", "op_names", "IDIOMS",
    "DEFAULT_DTYPES", "GenContext", "GraphConfig", "Info", "Skip", "recipe", "idiom", "get_recipe", "pattern",
    "PatternBuilder", "PASS_IDIOMS", "for_pass", "targeted", "edge_values",
]


def inputs_for(graph: Graph, *, dims: Mapping[str, int] | None = None) -> st.SearchStrategy[dict[str, np.ndarray]]:
    """Finite, well-conditioned inputs for ``graph`` (inside the domains the generator recorded;
    see ``random_inputs``), from a drawn seed. Symbolic dims the graph does not bind take ``dims``
    or small drawn sizes."""
    known = dict(testing_meta(graph).get("dims") or {})
    known.update(dims or {})
    free = sorted(graph.symbols() - set(known))

    @st.composite
    def draw(d):
        binding = dict(known, **{name: d(st.integers(1, 4)) for name in free})
        return random_inputs(graph, seed=d(st.integers(0, 2 ** 31 - 1)), dims=binding)
    return draw()


# ---------------------------------------------------------------------------- idiom strategies
def _idioms(names: Iterable[str], *, max_nodes: int = 24, context: bool = True, **kw) -> st.SearchStrategy[Graph]:
    """Graphs holding the idioms ``names``, with (unless ``context=False``) a few random elementwise
    and movement ops around them, so the patterns' inputs and results are read by other nodes."""
    ops = ["Relu", "Add", "Mul", "Tanh", "Transpose", "Reshape", "Neg"] if context else None
    return graphs(ops=ops, idioms=list(names), max_nodes=max_nodes, **kw)


def attention_blocks(**kw) -> st.SearchStrategy[Graph]:
    """Decomposed scaled-dot-product attention: on Q/K/V directly or in the GPT-2, BERT and Llama
    export shapes — projections, head split and merge, Kᵀ transposes, scales in every position,
    additive/boolean/causal masks, GQA's repeat-kv, RoPE."""
    return _idioms(["attention"], max_nodes=kw.pop("max_nodes", 48), **kw)


def gelu_idioms(**kw) -> st.SearchStrategy[Graph]:
    """The erf and tanh forms of GELU in the associations exporters write."""
    return _idioms(["gelu"], **kw)


def layernorm_idioms(**kw) -> st.SearchStrategy[Graph]:
    """Decomposed layer normalization (every spelling of the division, optional γ and β)."""
    return _idioms(["layernorm"], **kw)


def rmsnorm_idioms(**kw) -> st.SearchStrategy[Graph]:
    """Decomposed RMS normalization (also in f32 between casts, as Llama exports it)."""
    return _idioms(["rmsnorm"], **kw)


def rotary_idioms(**kw) -> st.SearchStrategy[Graph]:
    """Rotate-half rotary embeddings (HF ``apply_rotary_pos_emb``)."""
    return _idioms(["rotary"], **kw)


def matmul_epilogues(**kw) -> st.SearchStrategy[Graph]:
    """MatMul + bias + activation + residual (+ gate, cast), also as Gemm and flattened MatMul."""
    return _idioms(["matmul-epilogue"], **kw)


def elementwise_chains(**kw) -> st.SearchStrategy[Graph]:
    """Chains and broadcast trees of elementwise ops."""
    return _idioms(["elementwise-chain"], **kw)


def canonicalize_idioms(**kw) -> st.SearchStrategy[Graph]:
    """No-op views, cancelling transposes, cast chains, neutral elements, Gemm (and near misses)."""
    return _idioms(["noise"], **kw)


def duplicate_idioms(**kw) -> st.SearchStrategy[Graph]:
    """Repeated computations, with equal and with different attributes."""
    return _idioms(["duplicates"], **kw)


def folding_idioms(**kw) -> st.SearchStrategy[Graph]:
    """Shape arithmetic and computations on constants only."""
    return _idioms(["shape-chain", "constant-subgraph"], **kw)


def unfused(**kw) -> st.SearchStrategy[Graph]:
    """Any of the unfused idioms the fusions look for, several in one graph (not the edge-value
    idioms: see ``edge_values``)."""
    return _idioms([n for n in IDIOMS if n not in edges.EDGE_IDIOMS], max_nodes=kw.pop("max_nodes", 40), **kw)


def edge_values(**kw) -> st.SearchStrategy[Graph]:
    """The idioms at values that break compilers (``edges.py``): integer division, modulo and
    wrap-around, tiny-variance norms, masked softmax with q ≠ k, equal-size axes, size-1
    broadcasts, per-axis quantized weights, NaN and ±inf."""
    return _idioms(list(edges.EDGE_IDIOMS), max_nodes=kw.pop("max_nodes", 24), **kw)


def default_graphs() -> st.SearchStrategy[Graph]:
    """What ``check_pass`` draws for a pass that declares nothing the probe finds: random graphs
    over every op, graphs of unfused idioms, and graphs of edge values."""
    return st.one_of(graphs(), unfused(), edge_values())


# ---------------------------------------------------------------------------- your own patterns
class PatternBuilder:
    """What a ``pattern`` function builds with: ``b.Relu(x)``, ``b.Min(y, 6.0)`` (numbers become
    constants of the pattern's dtype), ``b.const(v)``, and draws that shrink to the first choice:
    ``b.choice([...])``, ``b.flag()``, ``b.draw(strategy)``."""

    def __init__(self, ctx: GenContext, dtype: str):
        self._ctx, self.dtype = ctx, dtype

    def const(self, value, dtype: str | None = None):
        return self._ctx.scalar(value, dtype or self.dtype)

    def choice(self, options):
        return self._ctx.choice(options)

    def flag(self) -> bool:
        return self._ctx.flag()

    def draw(self, strategy):
        return self._ctx.draw(strategy)

    def op(self, op: str, *inputs, _ranges=None, _outputs=None, **attrs):
        ins = [self.const(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in inputs]
        node = self._ctx.add(op, ins, attrs, outputs=_outputs, ranges=_ranges)
        return node.outputs[0] if len(node.outputs) == 1 else tuple(node.outputs)

    def __getattr__(self, op: str):
        if op.startswith("_") or not op[:1].isupper():
            raise AttributeError(op)
        return lambda *inputs, **attrs: self.op(op, *inputs, **attrs)


def pattern(fn, *, inputs: int = 1, dtypes: Iterable[str] = ("f32", "f16", "f64"),
            within: tuple[float, float] | None = None, name: str | None = None, max_nodes: int = 16,
            context: bool = True) -> st.SearchStrategy[Graph]:
    """Graphs holding the pattern ``fn(b, *inputs)`` builds — the unfused form your own fusion
    looks for — among a few random nodes that read its inputs and results::

        relu6 = pattern(lambda b, x: b.Min(b.Relu(x), 6.0), within=(-10.0, 10.0))
        check_pass("fuse-relu6", graphs=relu6)

    ``inputs`` values are read from the graph or created (the first of a dtype in ``dtypes``, the
    others broadcasting with it), with values in ``within`` when given. Draws made through ``b``
    (``b.choice``, ``b.flag``) are the pattern's variations; hypothesis shrinks them to the first."""
    label = f"pattern:{name or getattr(fn, '__qualname__', 'fn')}"
    dts = tuple(dtypes)

    def step(ctx: GenContext) -> None:
        if within is not None:
            dt = ctx.dtype(dts)
            x = ctx.leaf(dt, ctx.shape(), lo=within[0], hi=within[1], const=False)
        else:
            x = ctx.pick(dts)
        vals = [x] + [ctx.operand_for(x) if within is None else
                      ctx.leaf(x.type.dtype.name, x.type.shape, lo=within[0], hi=within[1], const=False)
                      for _ in range(inputs - 1)]
        fn(PatternBuilder(ctx, x.type.dtype.name), *vals)
    step.__name__ = label
    IDIOMS[label] = step
    return _idioms([label], max_nodes=max_nodes, context=context)


def targeted(touches: Iterable[str]) -> st.SearchStrategy[Graph] | None:
    """Graphs holding what a pass declares it rewrites (``Pass.touches``: idiom names and op or
    category names), mixed with edge-value idioms and random graphs (its "does not apply" path);
    None when it declares nothing this generator knows."""
    touches = list(touches)
    idioms = [t for t in touches if t in IDIOMS]
    ops = [t for t in touches if t not in IDIOMS and _generates(t)]
    parts: list[st.SearchStrategy[Graph]] = []
    if idioms:
        # each declared idiom as often as the others, and now and then all of them together
        parts += [_idioms([name]) for name in idioms] + [_idioms(idioms, max_nodes=32)]
    if ops:
        parts.append(graphs(ops=ops, max_nodes=10))
    if not parts:
        return None
    # and the edge values, where any pass may break, and random graphs (the "does not apply" path)
    return st.one_of(*parts, edge_values(), graphs(max_nodes=10))


def _generates(name: str) -> bool:
    """Whether ``name`` is an op or category the generator has a recipe for."""
    try:
        return bool(op_names([name]))
    except Exception:
        return False


#: the idioms that exercise each built-in pass (the rest get random graphs and every idiom)
PASS_IDIOMS: dict[str, Callable[..., st.SearchStrategy[Graph]]] = {
    "canonicalize": canonicalize_idioms, "cse": duplicate_idioms, "fold-constants": folding_idioms,
    "fuse-attention": attention_blocks, "fuse-elementwise": elementwise_chains, "fuse-gelu": gelu_idioms,
    "fuse-layernorm": layernorm_idioms, "fuse-matmul-epilogue": matmul_epilogues, "fuse-rmsnorm": rmsnorm_idioms,
    "fuse-rotary": rotary_idioms,
}


def for_pass(name: str) -> st.SearchStrategy[Graph]:
    """Graphs for testing the registered pass ``name``: what it declares it touches (``targeted``),
    else ``default_graphs()``."""
    from ...passes import get_pass
    return targeted(getattr(get_pass(name), "touches", ())) or default_graphs()
