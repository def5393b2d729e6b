"""``Fused``: a node whose body is itself a small random graph (what the fusion passes build),
so passes and backends meet fused nodes in their input too."""

from __future__ import annotations

from ....ir import Graph
from ....ir.ops import FLOAT
from .._context import GenContext, Info, Skip
from . import get_recipe, recipe

__all__: list[str] = []

#: what a fused body is made of: the elementwise ops fusion passes gather
BODY_OPS = ("Relu", "Add", "Mul", "Sub", "Tanh", "Sigmoid", "Neg", "Exp", "Div", "Abs", "Max", "Erf", "Gelu", "Cast")


@recipe("Fused")
def fused(ctx: GenContext, op: str) -> None:
    outer = [ctx.pick(FLOAT)]
    if ctx.flag():
        outer.append(ctx.operand_for(outer[0]))
    body = Graph(ctx.graph.fresh_name("fused_body"))
    sub = GenContext(ctx._draw, ctx.config, graph=body, parent=ctx)
    for v in outer:
        p = body.add_input(body.fresh_name(v.name), v.type)
        src = ctx.info_of(v)
        sub.info[id(p)] = Info(src.lo, src.hi, exact=src.exact)
        sub.pool.append(p)
    kind = "elementwise"
    if ctx.rare() and sub.step(lambda s: get_recipe("MatMul")(s, "MatMul")):
        kind = "matmul-epilogue"
    for _ in range(ctx.integer(1, 3)):
        name = ctx.choice(BODY_OPS)
        sub.step(lambda s, name=name: get_recipe(name)(s, name))
    if not len(body):
        raise Skip("empty body")
    results = [v for n in body for v in n.outputs if not v.uses]
    body.outputs = results
    infos = [ctx.info_of(v) for v in results]
    ctx.add(op, outer, {"kind": kind}, body=body, ranges=[(i.lo, i.hi) for i in infos],
            exact=all(i.exact for i in infos))
