"""The backend contract.

A backend either *executes* a graph (``compile`` returns an ``Executable`` whose ``run`` maps input
arrays to output arrays) or *estimates* it on hardware we do not have (``compile`` returns an
``Estimate`` from ``ridgeline.cost_models``). ``default_pipeline`` names the passes the backend
wants first; ``supports`` says which nodes it can take without falling back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np

from ..ir.errors import BackendError

if TYPE_CHECKING:
    from ..ir import Graph, Node

__all__ = ["Backend", "Executable", "ExecutingBackend", "InterpretedExecutable"]


@runtime_checkable
class Executable(Protocol):
    """A compiled graph: call ``run`` with arrays by input name (or in input order)."""

    graph: "Graph"

    def run(self, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray]) -> dict[str, np.ndarray]:
        """Execute once; returns outputs by name."""
        ...


@runtime_checkable
class Backend(Protocol):
    """What every backend provides; see the module docstring."""

    name: str
    kind: Literal["execute", "estimate"]
    default_pipeline: str
    description: str

    def supports(self, node: "Node") -> bool:
        ...

    def compile(self, graph: "Graph", **options: Any) -> Any:
        ...


class ExecutingBackend:
    """The declaration every executing backend shares: ``compile`` refuses option names not in
    ``accepts`` (name -> what it does), then builds ``executable(graph, **options)``."""

    name: ClassVar[str]
    description: ClassVar[str]
    kind: ClassVar[str] = "execute"
    default_pipeline: ClassVar[str] = "default"
    accepts: ClassVar[Mapping[str, str]] = {}
    executable: ClassVar[type]

    def compile(self, graph: "Graph", **options: Any) -> Any:
        self.check_options(options)
        return self.executable(graph, **options)

    def check_options(self, options: Mapping[str, Any]) -> None:
        """A typo in an option name is said first, before any other complaint about the graph."""
        unknown = sorted(set(options) - set(self.accepts))
        if unknown:
            raise BackendError(f"unknown option(s) for the {self.name} backend: {', '.join(unknown)} "
                               f"(the {self.name} backend takes {', '.join(self.accepts) or 'none'})")


class InterpretedExecutable:
    """The part every executing backend's executable shares: it runs ``self.interpreter``."""

    graph: Graph
    interpreter: Any

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        """Execute once; outputs by name (``profile=True`` fills ``timings``)."""
        return self.interpreter.run(inputs, profile=profile)

    def __call__(self, inputs: Mapping[str, Any] | Sequence[Any] = (), *, profile: bool = False) -> dict[str, np.ndarray]:
        return self.run(inputs, profile=profile)

    @property
    def timings(self) -> dict[Node, float]:
        """Per-node wall times of the last ``run(..., profile=True)``."""
        return self.interpreter.timings
