"""The cross-estimate price cache (``cost_models.model.PRICES``) changes how often nodes are priced,
never what an estimate says: every record, total and LLM metric equals the uncached estimate's."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ridgeline.cost_models import estimate, target_names
from ridgeline.cost_models.model import PRICES, GraphAnalysis
from ridgeline.ir.errors import RidgelineError
from ridgeline.models import build

# the presets CI can afford to build many times (7B/8B/13B cover MHA, GQA and the Fused quant labels;
# 70B/405B add nothing structural, only layers); gpt2/bert cover the non-llama builders
PRESETS = ["gpt2", "bert-base", "llama-2-7b", "llama-3-8b", "llama-2-13b"]
TARGETS = sorted(target_names())
DTYPES = ["bf16", "f16", "f8e4m3", "i8", "i4"]


def _json(graph, target, opts, analysis=None) -> str:
    try:
        est = estimate(graph, target, analysis=analysis, **opts)
    except RidgelineError as e:           # a configuration that does not fit fails the same way
        return f"error: {e}"
    return json.dumps(est.to_json(nodes=True), sort_keys=True, default=str)


@pytest.fixture
def cold_prices():
    """Each example starts from an empty cache and leaves the process' cache as it found it enabled."""
    PRICES.clear()
    yield PRICES
    PRICES.enabled = True
    PRICES.clear()


@settings(max_examples=14, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(preset=st.sampled_from(PRESETS), target=st.sampled_from(TARGETS),
       phase=st.sampled_from(["prefill", "decode"]), batch=st.sampled_from([1, 3, 16, 256, 1024]),
       contexts=st.lists(st.sampled_from([64, 1000, 2048, 8192]), min_size=2, max_size=2, unique=True),
       dtype=st.sampled_from(DTYPES), tp=st.sampled_from([1, 2, 4, 8]))
def test_cached_estimates_equal_uncached(cold_prices, preset, target, phase, batch, contexts, dtype, tp):
    # two graphs that share most node shapes (decode's projections ignore the context): the second
    # estimate is mostly hits from the first graph's prices
    graphs = []
    for ctx in contexts:
        try:
            graphs.append(build(preset, phase=phase, batch=batch, context=ctx, dtype=dtype))
        except RidgelineError:
            return          # e.g. a context past the preset's maximum: nothing to estimate
    opts = {"tp": tp}
    cached = [_json(g, target, opts, GraphAnalysis(g)) for g in graphs]
    hits_possible = sum(len(t) for t in PRICES._tables.values())
    PRICES.enabled = False
    plain = [_json(g, target, opts) for g in graphs]
    assert cached == plain
    assert hits_possible or all(c.startswith("error") for c in cached)


def test_labels_of_twin_layers_survive_a_shared_price(cold_prices):
    """Quantized projections of different layers share one price but keep their own label."""
    g = build("llama-2-7b", phase="decode", batch=4, context=512, dtype="f8e4m3")
    est = estimate(g, "h100")
    labels = [r.detail.get("label") for r in est.nodes if r.detail.get("label")]
    assert len(set(labels)) > g.meta["llm"]["layers"]      # one per projection per layer
    assert sum(len(t) for t in PRICES._tables.values()) < len(est.nodes) / 4


def test_a_target_variant_gets_its_own_prices(cold_prices):
    from ridgeline.cost_models import get_target
    from ridgeline.sweep.variants import apply_overrides
    g = build("llama-2-7b", phase="decode", batch=8, context=1024)
    base = estimate(g, "h100")
    fast = estimate(g, apply_overrides(get_target("h100"), {"memory.hbm.bandwidth": "x2"}, name="h100"))
    assert fast.time_s < base.time_s       # same name, other content: never the base's prices
    assert len(PRICES._tables) == 2
