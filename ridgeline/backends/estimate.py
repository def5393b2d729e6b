"""The estimating backend: one per hardware target, applying its family's cost model.

``get_backend("h100")`` returns ``EstimateBackend(get_target("h100"))``; ``compile(graph)``
returns an ``Estimate`` instead of an executable. Options (``tp``, ``pp``, family options such as
``cuda_graphs``) can be given to the constructor or to ``compile``.

For LLM preset graphs (``graph.meta["llm"]`` names a preset) the backend also builds and costs
the *other* phase (prefill for a decode graph and vice versa) so the estimate reports both time to
first token and time per output token; pass ``companion=None`` to skip it, or an ``Estimate`` /
``Graph`` to supply your own (e.g. one that went through the same passes).
"""

from __future__ import annotations

import logging
from typing import Any

from ..cost_models import Estimate, Target, get_family, get_target
from ..ir import Graph, Node

__all__ = ["EstimateBackend"]

log = logging.getLogger(__name__)


class EstimateBackend:
    """Estimates graphs on a hardware target with its family's cost model."""

    kind = "estimate"

    def __init__(self, target: Target | str, **options: Any):
        self.target = target if isinstance(target, Target) else get_target(target)
        self.name = self.target.name
        self.description = f"{self.target.family} cost model: {self.target.title}"
        self.options = dict(options)

    @property
    def default_pipeline(self) -> str:
        """The fusion pipeline when the passes package provides one (``default``), else none."""
        try:
            from .. import passes
        except ImportError:  # pragma: no cover - passes ship with the package
            return ""
        return "default" if hasattr(passes, "run_pipeline") else ""

    def supports(self, node: Node) -> bool:
        # every op with a spec has FLOPs and bytes, which is all a cost model needs
        return node.spec_or_none is not None

    def model(self, **options: Any):
        """The configured cost model (raises a clear error for families not implemented yet)."""
        return get_family(self.target.family)(self.target, **{**self.options, **options})

    def compile(self, graph: Graph, *, companion: Any = "auto", **options: Any) -> Estimate:
        """Estimate ``graph``; see the module docstring for ``companion``."""
        model = self.model(**options)
        comp = None
        if isinstance(companion, Estimate):
            comp = companion
        elif isinstance(companion, Graph):
            comp = model.estimate(companion)
        elif companion == "auto":
            other = _companion_graph(graph)
            if other is not None:
                comp = self.model(**options).estimate(other)
        return model.estimate(graph, companion=comp)


def _companion_graph(graph: Graph) -> Graph | None:
    meta = graph.meta.get("llm")
    if not isinstance(meta, dict) or not meta.get("preset"):
        return None
    from ..models import companion
    return companion(graph)
