"""The estimating backend: one per hardware target, applying its family's cost model.

``get_backend("h100")`` returns ``EstimateBackend(get_target("h100"))``; ``compile(graph)``
returns an ``Estimate`` instead of an executable. Options (``tp``, ``pp``, family options such as
``cuda_graphs``) can be given to the constructor or to ``compile``.

For LLM graphs, ``companion`` (an ``Estimate`` or a ``Graph`` of the *other* phase: prefill for a
decode graph and vice versa) lets the estimate report both time to first token and time per
output token. ``ridgeline.estimate`` / ``ridgeline.compile`` build it for preset graphs
(``companion="auto"``, their default); this layer sits below the preset zoo and does not.
"""

from __future__ import annotations

from typing import Any

from ..cost_models import Estimate, Target, estimate_pair, get_family, get_target
from ..ir import Graph, Node

__all__ = ["EstimateBackend"]


class EstimateBackend:
    """Estimates graphs on a hardware target with its family's cost model."""

    kind = "estimate"
    #: the fusions leave the kernels a real compiler would launch
    default_pipeline = "default"

    def __init__(self, target: Target | str, **options: Any):
        self.target = target if isinstance(target, Target) else get_target(target)
        self.name = self.target.name
        self.description = f"{self.target.family} cost model: {self.target.title}"
        self.options = dict(options)

    def supports(self, node: Node) -> bool:
        # every op with a spec has FLOPs and bytes, which is all a cost model needs
        return node.spec_or_none is not None

    def model(self, **options: Any):
        """The configured cost model (raises a clear error for families not implemented yet)."""
        return get_family(self.target.family)(self.target, **{**self.options, **options})

    def compile(self, graph: Graph, *, companion: Estimate | Graph | None = None, **options: Any) -> Estimate:
        """Estimate ``graph``; see the module docstring for ``companion``."""
        if isinstance(companion, Graph):
            # each phase on a model of its own: a family model may keep state between pricing and totals
            return estimate_pair(lambda g, c: self.model(**options).estimate(g, companion=c), graph, companion)[0]
        model = self.model(**options)
        if companion is not None and not isinstance(companion, Estimate):
            from ..ir.errors import BackendError
            raise BackendError(f"companion must be an Estimate, a Graph or None, got {companion!r} "
                               f"(ridgeline.estimate builds the 'auto' one for presets)")
        return model.estimate(graph, companion=companion)
