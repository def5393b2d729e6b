"""What the spatial families share: the deployment's context window and the weight form."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from ridgeline import models
from ridgeline.cost_models.spatial import _weight_only, context_window


def _graph(ctx, top):
    return SimpleNamespace(meta={"llm": {"context": ctx, "max_context": top}})


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.integers(7, 17), st.integers(0, 6), st.integers(0, 6), st.floats(1e6, 1e12), st.floats(1e3, 1e9),
       st.floats(1e8, 1e14))
def test_the_window_does_not_follow_the_context(log_top, a, b, weights, kv_per_token, system):
    # the deployment a step runs on is sized for a window that holds the step's context and does
    # not depend on it: two contexts that both fit the same window get the same one (so a longer
    # context never runs on a larger deployment, and time per token grows with context)
    top = 2 ** log_top
    c1, c2 = sorted((max(1, top >> a), max(1, top >> b)))
    res1 = {0: (weights, kv_per_token * c1)}
    res2 = {0: (weights, kv_per_token * c2)}
    w1, w2 = context_window(_graph(c1, top), res1, system), context_window(_graph(c2, top), res2, system)
    assert w1 >= c1 and w2 >= c2
    fits = weights + kv_per_token * w2 <= system
    if fits and w2 >= c2 and weights + kv_per_token * w1 <= system and w1 >= c2:
        assert w1 == w2


def test_only_weight_only_models_are_widened_at_load():
    assert _weight_only(models.build("gpt2", weight_dtype="int8"))
    assert _weight_only(models.build("gpt2", dtype="int4"))
    assert not _weight_only(models.build("gpt2", dtype="int8"))       # W8A8: the products stay narrow
    assert not _weight_only(models.build("gpt2"))
