"""``fuse-matmul-epilogue``: a MatMul and the elementwise work on its result → one ``Fused`` node
(kind ``matmul-epilogue``) whose body holds the MatMul and its epilogue.

The math matched, one step at a time (the greedy driver grows the epilogue to a fixed point)::

    acc = A·B                        a MatMul, or a matmul-epilogue Fused node already built
    y   = f(acc)                     an activation: Relu, Gelu, Sigmoid, Tanh, ...; or a Cast
    y   = acc ∘ t   (∘ ∈ + − · ÷)    a bias, a residual, a gate (SwiGLU's up·silu(gate)), a scale
    y   = acc · σ(acc)               SiLU, matched as one step

``acc`` must be used only by the epilogue op (otherwise the MatMul's result is needed in memory
anyway) and the epilogue must not broadcast ``acc`` to a larger shape: the fused kernel writes
exactly one tile of the MatMul's output per tile computed.
"""

from __future__ import annotations

from ...ir import Value
from ..registry import register_pass
from ..rewriter import Match, RewriteBuilder, RewritePass, Rule, Var, fuse_nodes, ops
from ..rewriter.pattern import Op

__all__ = ["FuseMatmulEpilogue"]

KIND = "matmul-epilogue"
ACTIVATIONS = frozenset({"Relu", "Gelu", "Sigmoid", "Tanh", "Erf", "LeakyRelu", "Elu", "Selu", "Celu", "HardSigmoid",
                         "HardSwish", "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Neg", "Abs", "Cast",
                         "Exp", "Sqrt", "Reciprocal"})
BINARY = frozenset({"Add", "Sub", "Mul", "Div"})


def _is_acc(v: Value) -> bool | str:
    n = v.producer
    if n is None:
        return "not computed by a node"
    if n.op == "MatMul" or (n.op == "Fused" and n.attr("kind") == KIND):
        return True
    return f"produced by {n.op}, not a MatMul or a matmul epilogue"


def _body_size(v: Value) -> int:
    n = v.producer
    return len(n.body) if n is not None and n.op == "Fused" and n.body is not None else 1


acc = Var("acc", where=_is_acc)


def _make_check(max_ops: int):
    def check(m: Match) -> bool | str:
        a = m["acc"]
        inside = {id(n) for n in m.matched}
        if a.is_output:
            return f"%{a.name} is a graph output"
        if any(id(u) not in inside for u, _ in a.uses):
            return f"%{a.name} is also used outside the epilogue"
        y = m.root.outputs[0]
        if y.type.shape != a.type.shape:
            return f"the epilogue broadcasts %{a.name} {a.type} to {y.type}"
        if _body_size(a) - 1 + len(m.matched) > max_ops:
            return f"the epilogue would exceed max-ops={max_ops}"
        return True
    return check


def _rewrite(m: Match, b: RewriteBuilder):
    a = m["acc"]
    nodes = [a.producer] + m.matched[::-1]  # producer first, then the epilogue in order
    return fuse_nodes(b, nodes, [m.root.outputs[0]], kind=KIND)[0]


@register_pass("fuse-matmul-epilogue")
class FuseMatmulEpilogue(RewritePass):
    """Fuse bias, activation and residual ops into the MatMul that feeds them."""
    touches = ("matmul-epilogue", "quantized-weights")  # what check_pass generates for it

    #: most epilogue ops per fused node
    max_ops: int = 4

    def rules(self):
        check = _make_check(self.max_ops)
        return [
            Rule("silu", ops.Mul(acc, ops.Sigmoid(acc)), _rewrite, check=check, benefit=3,
                 doc="acc · sigmoid(acc)"),
            Rule("activation", Op(ACTIVATIONS, acc), _rewrite, check=check, benefit=2, doc="f(acc)"),
            Rule("binary", Op(BINARY, acc, Var("other")), _rewrite, check=check, doc="acc ∘ t"),
            Rule("binary-rhs", Op({"Sub", "Div"}, Var("other"), acc), _rewrite, check=check, doc="t ∘ acc"),
        ]
