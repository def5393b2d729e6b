"""``check_pass`` (ridgeline.testing) over random graphs of every op: ``quantize`` keeps them
well-formed — the result verifies, keeps the interface, runs, leaves the caller's constants alone.

Its numbers change by design, within per-element bounds a single rtol/atol cannot express; those
are checked against the quantization step in test_quantize_pass.py (every GEMM of the exported
models, random GEMMs). The tests skip until ``check_pass`` is on the branch.
"""

from __future__ import annotations

import pytest

import ridgeline.testing

check_pass = getattr(ridgeline.testing, "check_pass", None)
pytestmark = pytest.mark.skipif(check_pass is None, reason="ridgeline.testing.check_pass has not landed yet")

ANY = float("inf")


@pytest.mark.parametrize("scheme", ["int8", "int4", "fp8", "w8a8", "w8a8-static", "w8a8-fp8", "int8+kv-int8"])
def test_quantize_keeps_random_graphs_well_formed(scheme):
    check_pass(f"quantize{{scheme={scheme}}}", max_examples=40, rtol=ANY, atol=ANY)
