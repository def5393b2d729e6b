"""The mutation score in CI: every deliberately broken pass of tests/testing/mutants is wrong on
its hand-made witness graph, and ``check_pass(name)`` with its defaults catches it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ridgeline.ir import Graph
from ridgeline.passes import register_pass
from ridgeline.passes.registry import unregister_pass
from ridgeline.testing import PassCheckError, VacuousCheckError, check_graph, check_pass
from ridgeline.testing.check import as_target, probe_idioms

sys.path.insert(0, str(Path(__file__).parent))
from mutants import MUTANTS, register_all

NAMES = sorted(MUTANTS)


@pytest.mark.parametrize("name", NAMES)
def test_the_witness_graph_exposes_the_mutant(name):
    m = MUTANTS[name]
    g, inputs = m.witness()
    check_graph(lambda h: None, g, inputs)  # the witness itself is fine
    with pytest.raises(PassCheckError):
        check_graph(m.run, g, inputs)


@pytest.mark.parametrize("name", NAMES)
def test_check_pass_defaults_catch_the_mutant(name, tmp_path):
    # catching is what is tested here: no shrinking (it ran up to 2 s of each mutant's ~3 s; how
    # far a failure shrinks is test_broken_passes.py's and test_check_pass.py's subject)
    register_all()
    with pytest.raises(PassCheckError) as e:
        check_pass(MUTANTS[name].pass_name, repro_dir=tmp_path, shrink_seconds=0)
    assert e.value.failure.repro is not None and e.value.failure.repro.rir.exists()


def test_there_are_enough_mutants_in_every_category():
    cats = {m.category.split(":")[0].split(" ")[0] for m in MUTANTS.values()}
    assert len(MUTANTS) >= 25
    assert {"integer", "attribute", "size-1", "causal", "folding", "CSE", "DCE"} <= cats


def test_a_pass_that_never_changes_a_graph_fails_with_the_idioms_it_was_given():
    @register_pass("test-never-fires", touches=("gelu", "Relu"))
    def never(g: Graph) -> bool:
        return False
    try:
        with pytest.raises(VacuousCheckError, match=r"changed none of the \d+ graphs.*gelu, Relu"):
            check_pass("test-never-fires", max_examples=10)
        check_pass("test-never-fires", graphs=[_relu()])  # given graphs: not required to change
    finally:
        unregister_pass("test-never-fires")


def _relu() -> Graph:
    from ridgeline.ir import tensor
    g = Graph("relu")
    x = g.add_input("x", tensor("f32", 2))
    g.outputs = [g.add_node("Relu", [x]).outputs[0]]
    return g


def test_declarations_reach_the_target_and_undeclared_passes_are_probed():
    assert as_target("fuse-gelu").touches == ("gelu",)
    assert set(as_target("fuse-gelu,fuse-rotary").touches) == {"gelu", "rotary"}

    def flip_erf(g: Graph) -> bool:  # declares nothing, rewrites Erf only
        for n in g:
            if n.op == "Erf":
                return True
        return False
    assert as_target(flip_erf).touches is None
    seen = probe_idioms(flip_erf)
    assert "gelu" in seen and "rotary" not in seen
    assert np.isfinite(len(seen))
