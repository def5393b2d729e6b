"""Deliberately broken passes, each with a small hand-made graph proving it wrong.

A mutant is a plausible pass bug — integer semantics, an attribute that only matters for some
values, broadcasting of size-1 axes, causal masks when query and key lengths differ, folding of
per-axis quantized weights, and the classics of ``test_broken_passes.py``. ``test_mutants.py``
asserts that each witness graph exposes its mutant (so the mutant really is wrong) and that
``check_pass(name)`` with its defaults catches it; ``tools/mutation_score.py`` measures the score
and the time per mutant under the ci and soak profiles.

Mutants are registered as passes named ``mutant-<name>`` by ``register_all()``, as a plugin
would: some declare what they rewrite (``touches=``), some do not (``check_pass`` probes those).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ridgeline.ir import Graph

__all__ = ["Mutant", "MUTANTS", "mutant", "register_all"]


@dataclass
class Mutant:
    """A broken pass and the graph (with inputs) that proves it broken."""

    name: str
    category: str
    run: Callable[[Graph], object]
    witness: Callable[[], tuple[Graph, dict[str, np.ndarray]]]
    touches: tuple[str, ...] | None = None

    @property
    def pass_name(self) -> str:
        return f"mutant-{self.name}"


MUTANTS: dict[str, Mutant] = {}


def mutant(name: str, category: str, witness: Callable[[], tuple[Graph, dict]], touches=None):
    """Declare a mutant: ``fn(graph)`` is the broken pass, ``witness()`` the graph proving it."""
    def decorate(fn):
        MUTANTS[name] = Mutant(name, category, fn, witness, tuple(touches) if touches is not None else None)
        return fn
    return decorate


def register_all() -> list[str]:
    """Register every mutant as the pass ``mutant-<name>`` (idempotent); return their names."""
    from ridgeline.passes import register_pass
    from ridgeline.passes.registry import get_pass
    out = []
    for m in MUTANTS.values():
        try:
            get_pass(m.pass_name)
        except Exception:
            # register a wrapper: register_pass marks the function it registers (``pass_class``),
            # and check_pass(fn) then runs a marked function as the registered pass under another
            # label, so test_broken_passes would draw other graphs after this ran in its process
            register_pass(_wrapped(m.run), m.pass_name, touches=m.touches)
        out.append(m.pass_name)
    return out


def _wrapped(fn: Callable[[Graph], object]) -> Callable[[Graph], object]:
    def run(graph: Graph) -> object:
        return fn(graph)
    run.__doc__ = fn.__doc__
    return run


from . import attention, attributes, broadcast, classic, folding, integers  # noqa: F401  (they register)
