"""``Fused``: one kernel whose meaning is its ``body`` sub-graph.

A fusion pass moves a connected group of nodes into a body; the node's inputs bind the body's
inputs in order and its outputs are the body's results. FLOPs are the body's; bytes are only the
node's inputs and outputs — intermediates stay in registers or on-chip memory, which is the
whole point of fusing. ``kind`` says which fusion made it (``elementwise``, ``matmul-epilogue``).
"""

from __future__ import annotations

from ..dtypes import DTYPES
from .spec import CostContext, InferContext, op

# a fused kernel takes whatever its body takes: quantized kernels read fp8 and int4 tensors
_ANY = frozenset(DTYPES)

__all__: list[str] = []


def _body_flops(c: CostContext):
    body = c.body
    if body is None:
        return 0
    total = 0
    for n in body:
        total = total + n.spec.flops(n)
    return total


@op("Fused", inputs=["inputs*: T"], outputs=["outputs*: T"], types={"T": _ANY},
    attrs={"kind": ("str", "elementwise"), "label": ("str", "")}, category="fused",
    flops=_body_flops, domain="ridgeline", heterogeneous=("T",))
def _fused(ctx: InferContext):
    """Run the ``body`` graph as one kernel."""
    body = ctx.body
    if body is None:
        ctx.fail("a Fused node needs a body")
    return [v.type for v in body.outputs]
