"""``[metrics.serve]``: serve-sim columns in sweep rows equal ``simulate`` of the point's deployment."""

from __future__ import annotations

import pytest

from ridgeline.cost_models import get_target
from ridgeline.serving import simulate
from ridgeline.sweep import sweep
from ridgeline.sweep.spec import SpecError, parse_spec
from ridgeline.sweep.variants import apply_overrides

SERVE = {"workload": "chat", "rate": 4, "requests": 40, "slo": "ttft=0.5,tpot=0.05"}
SPEC = {"axes": {"model": ["llama-2-7b"], "target": ["h100", "h100-slow"], "phase": ["prefill", "decode"],
                 "batch": [1, 4]},
        "variants": {"h100-slow": {"base": "h100", "memory.hbm.bandwidth": "x0.25"}},
        "metrics": {"serve": SERVE}}


@pytest.fixture(scope="module")
def rows():
    return sweep(SPEC, workers=1).to_pylist()


def test_rows_carry_the_simulation_of_their_deployment(rows):
    assert len(rows) == 8
    by_target: dict = {}
    for r in rows:
        assert r["serve.error"] is None and r["serve.ttft_p50_s"] > 0 and r["serve.tpot_p50_s"] > 0
        by_target.setdefault(r["target"], set()).add((r["serve.ttft_p99_s"], r["serve.tpot_p50_s"],
                                                      r["serve.goodput_rps"]))
    # phase and batch are the simulation's own: one result per deployment
    assert all(len(v) == 1 for v in by_target.values()) and len(by_target) == 2
    # the variant (a Target no registry knows by name) is simulated as itself
    slow = apply_overrides(get_target("h100"), {"memory.hbm.bandwidth": "x0.25"}, name="h100-slow")
    m = simulate("llama-2-7b", slow, seed=0, **SERVE).metrics
    assert by_target["h100-slow"] == {(m.ttft["p99"], m.tpot["p50"], m.goodput_rps)}
    # and its slower memory shows in its decode steps
    assert next(iter(by_target["h100-slow"]))[1] > 2 * next(iter(by_target["h100"]))[1]


def test_a_failed_estimate_is_not_simulated():
    spec = {**SPEC, "axes": {"model": ["gpt2"], "target": ["wse-3"], "phase": ["decode"], "tp": [2]}}
    (row,) = sweep(spec, workers=1).to_pylist()
    assert row["error"] and row["serve.error"].startswith("not simulated") and row["serve.ttft_p50_s"] is None


@pytest.mark.parametrize("serve, message", [
    ({"workload": "nope"}, "unknown workload"),
    ({"rate": -1}, "rate"),
    ({"slo": "ttft=fast"}, "--slo ttft"),
    ({"scheduler": "fifo"}, "unknown scheduler"),
    ({"requests": 0}, "requests"),
    ({"colour": 1}, "unknown key"),
])
def test_bad_serve_settings_are_one_spec_error(serve, message):
    with pytest.raises(SpecError, match=message):
        parse_spec({**SPEC, "metrics": {"serve": serve}})
