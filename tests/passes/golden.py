"""Golden tests for passes: hand-written IR before → the exact IR expected after, plus a numeric
check that the rewrite kept the graph's meaning (numpy reference, seeded inputs)."""

from __future__ import annotations

import numpy as np

from ridgeline.api import reference_evaluator
from ridgeline.backends.numpy import Interpreter
from ridgeline.ir import Graph, parse_graph, print_graph
from ridgeline.passes import run_pipeline
from ridgeline.testing.inputs import random_inputs

__all__ = ["check_golden", "assert_same_outputs", "optimize_text"]


def optimize_text(before: str, pipeline: str, **options) -> tuple[Graph, Graph]:
    """Parse ``before``, run ``pipeline`` on a copy (verifying after each pass); (before, after)."""
    g = parse_graph(before)
    after = g.copy()
    options.setdefault("evaluator", reference_evaluator())
    run_pipeline(after, pipeline, verify_each=True, **options)
    return g, after


def assert_same_outputs(a: Graph, b: Graph, *, seed: int = 0, rtol: float = 1e-5, atol: float = 1e-6,
                        dims: dict | None = None) -> None:
    """Both graphs compute the same outputs on seeded random inputs (numpy reference)."""
    inputs = random_inputs(a, seed=seed, dims=dims)
    ra = Interpreter(a).run(inputs)
    rb = Interpreter(b).run(inputs)
    assert list(ra) == list(rb), (list(ra), list(rb))
    for k in ra:
        assert ra[k].shape == rb[k].shape and ra[k].dtype == rb[k].dtype, k
        np.testing.assert_allclose(rb[k].astype(np.float64), ra[k].astype(np.float64), rtol=rtol, atol=atol,
                                   err_msg=f"output {k}")


def check_golden(before: str, pipeline: str, expected: str, *, numeric: bool = True, **options) -> Graph:
    """The IR after ``pipeline`` prints exactly as ``expected`` (normalized by parse+print)."""
    g, after = optimize_text(before, pipeline, **options)
    want = print_graph(parse_graph(expected))
    got = print_graph(after)
    assert got == want, f"\n--- got ---\n{got}\n--- expected ---\n{want}"
    if numeric:
        assert_same_outputs(g, after)
    return after
